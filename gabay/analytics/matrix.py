"""The grades of one exam as a table: one row per response, one column per key item.

Only the latest grade of each response counts (the highest ``version``). Grades must be of the
exam and the key version analysed (InvalidInput otherwise: mixing key versions would compare
different questions). Statistics across items (totals, discrimination, reliability) use the
*complete* grades only, where every item has points; the statistics of one item use every grade in
which that item is graded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gabay.errors import InvalidInput
from gabay.grading.grade import Grade, GradedItem
from gabay.grading.key import AnswerKey

UPPER_LOWER_SHARE = 0.27


@dataclass(frozen=True)
class ScoreTable:
    key: AnswerKey
    grades: list[Grade]
    complete: list[Grade]

    def points(self, grade: Grade, question_id: str) -> float:
        """The item's points in a complete grade."""
        item = grade.item(question_id)
        assert item is not None and item.points is not None
        return item.points

    def graded_items(self, question_id: str) -> list[GradedItem]:
        """The item as graded in every grade where it has points."""
        found = (g.item(question_id) for g in self.grades)
        return [i for i in found if i is not None and i.points is not None]

    def total(self, grade: Grade) -> float:
        """The sum of a complete grade's item points."""
        return math.fsum(self.points(grade, item.question_id) for item in self.key.items)

    def totals(self) -> list[float]:
        return [self.total(g) for g in self.complete]

    def groups(self) -> tuple[list[Grade], list[Grade]]:
        """Upper and lower 27% of the complete grades by total (ties broken by response id)."""
        size = group_size(len(self.complete))
        ranked = sorted(self.complete, key=lambda g: (-self.total(g), g.response_id))
        return ranked[:size], ranked[len(ranked) - size:] if size else []


def group_size(n: int) -> int:
    """round(0.27 n), half up, at least 1; 0 below 2 grades (no two groups to compare)."""
    return 0 if n < 2 else max(1, math.floor(UPPER_LOWER_SHARE * n + 0.5))


def score_table(key: AnswerKey, grades: Sequence[Grade]) -> ScoreTable:
    latest: dict[str, Grade] = {}
    for grade in grades:
        if (grade.exam_id, grade.answer_key_version, grade.answer_key_digest) != (
                key.exam_id, key.version, key.digest()):
            raise InvalidInput(f"grade of {grade.response_id!r} is for {grade.exam_id!r} key version "
                               f"{grade.answer_key_version}, not {key.exam_id!r} version {key.version}")
        known = latest.get(grade.response_id)
        if known is None or grade.version > known.version:
            latest[grade.response_id] = grade
    ordered = sorted(latest.values(), key=lambda g: g.response_id)
    ids = [i.question_id for i in key.items]
    complete = [g for g in ordered if all((g.item(q) or _MISSING).points is not None for q in ids)]
    return ScoreTable(key=key, grades=ordered, complete=complete)


_MISSING = GradedItem(question_id="", type="essay", max_points=1, points=None, status="needs_review",
                      source="none", answered=False)
