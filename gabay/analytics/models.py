"""The report of one exam, JSON-ready (``model_dump(mode="json")``): ids and aggregates, no names.

Every statistic that can be undefined (too few submissions, zero variance) is a
:class:`gabay.analytics.measure.Measure`: a value, or None with the reason.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from gabay.analytics.measure import Measure


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class HistogramBin(_Frozen):
    """Submissions whose percentage p satisfies ``lower <= p < upper`` (the last bin includes 100)."""

    lower: float
    upper: float
    count: int


class ExamSummary(_Frozen):
    """Total scores, in points, of the complete grades (``count`` of them)."""

    count: int
    #: Grades left out because some item still waits for the teacher.
    excluded_needs_review: int
    max_points: float
    mean: Measure
    median: Measure
    #: Divides by n: the spread of these students.
    sd_population: Measure
    #: Divides by n - 1: the estimate for the wider group they stand for.
    sd_sample: Measure
    mean_percent: Measure
    histogram: list[HistogramBin]


class OptionShare(_Frozen):
    """How many respondents chose an option; ``upper_share``/``lower_share`` within the 27% groups."""

    option: str
    correct: bool
    count: int
    share: float
    upper_share: float | None
    lower_share: float | None


class Distractors(_Frozen):
    """Choices of a choice item among the ``respondents`` whose choice is known (blanks included).

    Shares of a multi-select item may sum to more than 1 (several options per respondent).
    """

    respondents: int
    options: list[OptionShare]
    no_answer: int
    no_answer_share: float
    #: Respondents whose answer named no option.
    unrecognised: int


class ItemReport(_Frozen):
    question_id: str
    type: str
    max_points: float
    #: Grades in which this item is graded (any grade, complete or not).
    graded: int
    answered: int
    #: Every observed score is 0 or the maximum.
    dichotomous: bool
    #: Mean fraction of the points (for a right/wrong item: the proportion correct).
    difficulty: Measure
    #: Pearson r of the item score with the rest score (total minus this item), complete grades.
    point_biserial: Measure
    #: Mean fraction in the top 27% minus in the bottom 27% by total score, complete grades.
    upper_lower: Measure
    distractors: Distractors | None


class ExamReport(_Frozen):
    exam_id: str
    answer_key_version: int
    summary: ExamSummary
    items: list[ItemReport]
    #: Size of each of the upper and lower groups (round(0.27 n), at least 1); 0 below 2 grades.
    group_size: int
    #: KR-20 on right/wrong scores, only when every item is dichotomous.
    kr20: Measure
    #: Cronbach's alpha on the item points.
    cronbach_alpha: Measure
