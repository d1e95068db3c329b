"""Internal consistency of the exam over the complete grades (k items, n grades).

- Cronbach's alpha = k / (k - 1) * (1 - sum of item variances / variance of the totals), on the
  items' points.
- KR-20 = k / (k - 1) * (1 - sum of p_j * (1 - p_j) / variance of the number correct), defined
  only when every item is right/wrong (every score 0 or full marks); it equals alpha computed on
  0/1 scores.

Both use population variances (divide by n); the ratio, and so the coefficient, is the same with
sample variances (n - 1 cancels). Undefined (None with the reason) with fewer than 2 items or 2
grades, or when the totals do not vary.
"""

from __future__ import annotations

import math

from gabay.analytics.matrix import ScoreTable
from gabay.analytics.measure import Measure
from gabay.analytics.stats import sum_of_squares


def _undefined_reason(table: ScoreTable) -> str | None:
    k, n = len(table.key.items), len(table.complete)
    if k < 2:
        return f"needs at least 2 items, the key has {k}"
    if n < 2:
        return f"needs at least 2 complete submissions, has {n}"
    return None


def _coefficient(columns: list[list[float]]) -> Measure:
    n, k = len(columns[0]), len(columns)
    totals = [math.fsum(column[i] for column in columns) for i in range(n)]
    total_var = sum_of_squares(totals) / n
    if total_var <= 1e-12:
        return Measure.undefined("the total scores have zero variance")
    item_vars = math.fsum(sum_of_squares(column) / n for column in columns)
    return Measure.of(k / (k - 1) * (1 - item_vars / total_var))


def cronbach_alpha(table: ScoreTable) -> Measure:
    reason = _undefined_reason(table)
    if reason:
        return Measure.undefined(reason)
    return _coefficient([[table.points(g, i.question_id) for g in table.complete] for i in table.key.items])


def kr20(table: ScoreTable) -> Measure:
    reason = _undefined_reason(table)
    if reason:
        return Measure.undefined(reason)
    columns = []
    for item in table.key.items:
        fractions = [table.points(g, item.question_id) / item.max_points for g in table.complete]
        partial = [f for f in fractions if not (math.isclose(f, 0.0, abs_tol=1e-9) or math.isclose(f, 1.0))]
        if partial:
            return Measure.undefined(f"item {item.question_id} has partial scores (KR-20 needs right/wrong "
                                     "items; see Cronbach's alpha)")
        columns.append([round(f) for f in fractions])
    # p_j (1 - p_j) is the population variance of a 0/1 column, so this is the KR-20 formula.
    return _coefficient([[float(v) for v in column] for column in columns])
