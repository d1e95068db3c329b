"""The exam-level statistics: count, mean, median, both standard deviations, the histogram.

Histogram: ``bins`` equal bins of the percentage 100 * total / maximum (10 by default: 0-10,
10-20, ..., 90-100), each including its lower bound and excluding its upper bound except the last,
which includes 100. Bin membership is computed as ``floor(bins * total / maximum)`` (plus 1e-9),
so 29 of 100 points is in 20-30, whatever the float rounding of 29/100*100.
"""

from __future__ import annotations

import math

from gabay.analytics.matrix import ScoreTable
from gabay.analytics.measure import Measure
from gabay.analytics.models import ExamSummary, HistogramBin
from gabay.analytics.stats import mean, median, std_dev

DEFAULT_BINS = 10


def histogram(totals: list[float], max_points: float, bins: int = DEFAULT_BINS) -> list[HistogramBin]:
    counts = [0] * bins
    for total in totals:
        index = math.floor(bins * total / max_points + 1e-9) if max_points else 0
        counts[min(max(index, 0), bins - 1)] += 1
    width = 100 / bins
    return [HistogramBin(lower=round(i * width, 6), upper=round((i + 1) * width, 6), count=c)
            for i, c in enumerate(counts)]


def summarise(table: ScoreTable, bins: int = DEFAULT_BINS) -> ExamSummary:
    totals = table.totals()
    max_points = table.key.max_points
    average = mean(totals)
    percent = (Measure.of(100 * average.value / max_points) if average.value is not None
               else average)
    return ExamSummary(
        count=len(totals), excluded_needs_review=len(table.grades) - len(totals),
        max_points=max_points, mean=average, median=median(totals),
        sd_population=std_dev(totals, sample=False), sd_sample=std_dev(totals, sample=True),
        mean_percent=percent, histogram=histogram(totals, max_points, bins),
    )
