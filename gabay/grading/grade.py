"""The grade of one response: per-item points and status, totals, and the versions behind it.

A grade holds ids, points and digests only: no student name and no answer text (option texts of
the key are kept for choice items, for the distractor analysis). ``version`` counts the grades of
one response: 1 for the first, +1 for each re-grade that changed something
(:func:`gabay.grading.regrade.regrade`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gabay.grading.key import AnswerKey, ItemType

ItemStatus = Literal["graded", "needs_review"]
#: Who decided the points: the key's rule, the LLM grader, the teacher; ``none`` while in review.
Source = Literal["key", "llm", "teacher", "none"]


class GradedItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    question_id: str
    type: ItemType
    max_points: float
    #: None while the item waits for the teacher (``needs_review``).
    points: float | None
    status: ItemStatus
    source: Source
    answered: bool
    #: The options chosen (choice items; as the key spells them), else None.
    selected: list[str] | None = None
    #: Pieces of a choice answer that name no option (counted as wrong choices).
    unrecognised: int = 0
    suggested_points: float | None = None
    confidence: float | None = None
    rationale: str | None = None
    review_reason: str | None = None
    key_digest: str = ""
    answer_digest: str = ""

    @property
    def fraction(self) -> float | None:
        """Points as a share of the maximum (None while in review)."""
        return None if self.points is None else self.points / self.max_points

    @property
    def correct(self) -> bool | None:
        """Full marks (None while in review)."""
        return None if self.points is None else self.points >= self.max_points


class Grade(BaseModel):
    model_config = ConfigDict(frozen=True)

    response_id: str
    exam_id: str
    answer_key_version: int
    answer_key_digest: str
    version: int = Field(ge=1)
    items: list[GradedItem]
    #: Sum of the graded items' points, over ``max_points`` (the graded items' maximum).
    points: float
    max_points: float
    #: Maximum of the items waiting for the teacher; ``total_max_points`` = both.
    pending_max_points: float
    total_max_points: float
    #: 100 * points / max_points, 2 decimals; None when nothing is graded yet.
    percent: float | None
    status: Literal["complete", "needs_review"]
    #: Question ids the response answered that the key does not know (ignored).
    extra_answers: list[str] = Field(default_factory=list)

    def item(self, question_id: str) -> GradedItem | None:
        return next((i for i in self.items if i.question_id == question_id), None)

    @property
    def review_ids(self) -> list[str]:
        return [i.question_id for i in self.items if i.status == "needs_review"]


def assemble(key: AnswerKey, response_id: str, items: Sequence[GradedItem], *, version: int = 1,
             extra_answers: Sequence[str] = ()) -> Grade:
    """The grade with its totals computed from ``items``."""
    graded = [i for i in items if i.points is not None]
    points = round(sum(i.points or 0.0 for i in graded), 6)
    max_points = sum(i.max_points for i in graded)
    pending = sum(i.max_points for i in items if i.points is None)
    return Grade(
        response_id=response_id, exam_id=key.exam_id, answer_key_version=key.version,
        answer_key_digest=key.digest(), version=version, items=list(items), points=points,
        max_points=max_points, pending_max_points=pending, total_max_points=max_points + pending,
        percent=round(100 * points / max_points, 2) if max_points else None,
        status="needs_review" if pending or len(graded) < len(items) else "complete",
        extra_answers=sorted(extra_answers),
    )
