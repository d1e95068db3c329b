"""Re-grading after the answer key changed: a new grade version only when something changed.

:func:`regrade` grades the response again with the current key, reusing the earlier LLM verdicts
of unchanged items and answers. When the result differs from the previous grade in anything but
its version number (points, statuses, the key version or digest it was computed with), it is the
next version (``previous.version + 1``); otherwise the previous grade is returned unchanged, so
running a re-grade twice makes one new version. :func:`grade_changes` lists what changed per item
(for telling the student), :func:`grade_changed` says whether anything did.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from gabay.errors import InvalidInput
from gabay.grading.grade import Grade, GradedItem
from gabay.grading.grader import grade_response
from gabay.grading.key import AnswerKey
from gabay.grading.llm import LLMGrader
from gabay.grading.response import Response


class ItemChange(BaseModel):
    """One item whose points or status differ between two grades (None: absent from that grade)."""

    model_config = ConfigDict(frozen=True)

    question_id: str
    points_before: float | None
    points_after: float | None
    status_before: str | None
    status_after: str | None


def _decision(item: GradedItem) -> tuple[object, ...]:
    return item.points, item.status, item.source


def grade_changes(old: Grade, new: Grade) -> list[ItemChange]:
    """The items whose points, status or deciding source differ, in the new key's order."""
    before = {i.question_id: i for i in old.items}
    after = {i.question_id: i for i in new.items}
    order = [i.question_id for i in new.items] + [q for q in before if q not in after]
    changes = []
    for qid in order:
        b, a = before.get(qid), after.get(qid)
        if b is not None and a is not None and _decision(b) == _decision(a):
            continue
        changes.append(ItemChange(question_id=qid, points_before=b.points if b else None,
                                  points_after=a.points if a else None,
                                  status_before=b.status if b else None,
                                  status_after=a.status if a else None))
    return changes


def grade_changed(old: Grade, new: Grade) -> bool:
    """Whether ``new`` differs from ``old`` in anything but the version number."""
    return old.model_dump(exclude={"version"}) != new.model_dump(exclude={"version"})


def regrade(previous: Grade, key: AnswerKey, response: Response, *, llm: LLMGrader | None = None,
            overrides: Mapping[str, float] | None = None) -> Grade:
    """The grade of ``response`` under ``key``: ``previous`` itself when nothing changed."""
    if previous.response_id != response.response_id:
        raise InvalidInput(f"grade of {previous.response_id!r} cannot be re-graded with response "
                           f"{response.response_id!r}")
    reuse = {i.question_id: i for i in previous.items}
    new = grade_response(key, response, llm=llm, overrides=overrides, version=previous.version,
                         reuse=reuse)
    if not grade_changed(previous, new):
        return previous
    return new.model_copy(update={"version": previous.version + 1})
