"""Which items of an exam need the teacher's attention, and why (the report and the digest).

- too easy: difficulty (mean share of the points) above ``REPORT_EASY_ABOVE``;
- too hard: difficulty below ``REPORT_HARD_BELOW``;
- negative discrimination: the point-biserial r or the upper/lower index below 0 (the stronger
  students do worse on the item than the weaker ones: often a wrong key or an ambiguous question);
- unused distractor: a wrong option of a choice item that no respondent chose (it distracts nobody).

Undefined statistics (too few submissions) flag nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from gabay.analytics.models import ExamReport, ItemReport

TOO_EASY = "too easy"
TOO_HARD = "too hard"
NEGATIVE = "negative discrimination"
UNUSED_DISTRACTOR = "distractor nobody picks"


@dataclass(frozen=True)
class Thresholds:
    easy_above: float = 0.9
    hard_below: float = 0.2


@dataclass(frozen=True)
class ItemFlag:
    """One reason to look at an item again; ``detail`` names the value or the option."""

    question_id: str
    reason: str
    detail: str


def item_flags(item: ItemReport, thresholds: Thresholds) -> list[ItemFlag]:
    flags: list[ItemFlag] = []
    p = item.difficulty.value
    if p is not None and p > thresholds.easy_above:
        flags.append(ItemFlag(item.question_id, TOO_EASY, f"difficulty {p:.2f}"))
    if p is not None and p < thresholds.hard_below:
        flags.append(ItemFlag(item.question_id, TOO_HARD, f"difficulty {p:.2f}"))
    negative = [f"{name} {m.value:.2f}" for name, m in (("r", item.point_biserial), ("D", item.upper_lower))
                if m.value is not None and m.value < 0]
    if negative:
        flags.append(ItemFlag(item.question_id, NEGATIVE, ", ".join(negative)))
    if item.distractors is not None and item.distractors.respondents > 0:
        for option in item.distractors.options:
            if not option.correct and option.count == 0:
                flags.append(ItemFlag(item.question_id, UNUSED_DISTRACTOR, option.option))
    return flags


def exam_flags(report: ExamReport, thresholds: Thresholds) -> list[ItemFlag]:
    """Every flag of every item, in the key's item order."""
    return [flag for item in report.items for flag in item_flags(item, thresholds)]
