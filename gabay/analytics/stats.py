"""Descriptive statistics on plain lists of numbers, each returning a :class:`Measure`.

Variances are given both ways and named: ``population`` divides the sum of squared deviations by
n (the exam's own students are the whole population), ``sample`` by n - 1 (they stand for a
larger group). Correlations are Pearson's r.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gabay.analytics.measure import Measure


def mean(values: Sequence[float]) -> Measure:
    if not values:
        return Measure.undefined("no scores")
    return Measure.of(math.fsum(values) / len(values))


def median(values: Sequence[float]) -> Measure:
    """The middle value; the mean of the two middle values for an even count."""
    if not values:
        return Measure.undefined("no scores")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return Measure.of(ordered[middle])
    return Measure.of((ordered[middle - 1] + ordered[middle]) / 2)


def sum_of_squares(values: Sequence[float]) -> float:
    """Sum of squared deviations from the mean (two-pass, in fsum)."""
    centre = math.fsum(values) / len(values)
    return math.fsum((v - centre) ** 2 for v in values)


def variance(values: Sequence[float], *, sample: bool) -> Measure:
    needed = 2 if sample else 1
    if len(values) < needed:
        return Measure.undefined(f"needs at least {needed} scores, has {len(values)}")
    return Measure.of(sum_of_squares(values) / (len(values) - (1 if sample else 0)))


def std_dev(values: Sequence[float], *, sample: bool) -> Measure:
    var = variance(values, sample=sample)
    return var if var.value is None else Measure.of(math.sqrt(var.value))


def pearson(xs: Sequence[float], ys: Sequence[float], *, x_name: str = "x", y_name: str = "y") -> Measure:
    """Pearson's r of paired values; undefined below 2 pairs or when either side does not vary."""
    if len(xs) != len(ys):
        raise ValueError("pearson() needs pairs")
    if len(xs) < 2:
        return Measure.undefined(f"needs at least 2 submissions, has {len(xs)}")
    sxx, syy = sum_of_squares(xs), sum_of_squares(ys)
    for name, ss in ((x_name, sxx), (y_name, syy)):
        if ss <= 1e-12:
            return Measure.undefined(f"the {name} has zero variance")
    mx, my = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return Measure.of(sxy / math.sqrt(sxx * syy))
