"""Grading before feedback: a submission with the points its grade gave, for ``gabay.feedback.scoring``.

The feedback path scores a submission from the points it carries (``score()`` takes ``points``
when given). :func:`fill_points` returns a copy of the submission whose answers carry the grade's
points (None for items waiting for the teacher), so ``score(fill_points(submission, grade))`` shows
the graded points, partial credit included, and counts items in review as pending.
"""

from __future__ import annotations

from typing import Any, TypeVar

from gabay.errors import InvalidInput
from gabay.grading.grade import Grade

S = TypeVar("S")


def fill_points(submission: S, grade: Grade) -> S:
    """``submission`` (a pydantic ``Submission``) with ``points`` set from ``grade`` per answer.

    InvalidInput when the grade is of another response or an item's maximum differs from the
    answer's ``max_points`` (the key and the form disagree).
    """
    model: Any = submission
    if model.response_id != grade.response_id:
        raise InvalidInput(f"the grade is of response {grade.response_id!r}, not {model.response_id!r}")
    answers = []
    for answer in model.answers:
        item = grade.item(answer.question_id)
        if item is None:
            answers.append(answer)
            continue
        if item.max_points != answer.max_points:
            raise InvalidInput(f"{answer.question_id}: the key gives {item.max_points:g} points, "
                               f"the form {answer.max_points:g}")
        answers.append(answer.model_copy(update={"points": item.points}))
    result: S = model.model_copy(update={"answers": answers})
    return result
