"""Re-grading a whole exam after its answer key changed: new grade versions, never an email.

The platform sends the exam's new key (``regrade_exam.send(answer_key)``, ``gabay grades regrade``).
Every stored, graded and not anonymised submission of the exam is graded again from its stored
answers (:func:`gabay.grading.regrade.regrade`: earlier LLM verdicts of unchanged items are reused,
the teacher's points for essays are kept). A submission whose grade changed gets the next grade
version in the store; one whose grade did not change is left alone, so a repeated re-grade (a
retry, the same key sent twice) writes nothing. The students' emails are not sent again: the
exactly-once rules of the feedback worker hold, and the platform shows the new grade.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gabay.errors import InvalidInput
from gabay.grading.grade import Grade
from gabay.grading.key import AnswerKey
from gabay.grading.llm import LLMGrader
from gabay.grading.regrade import regrade
from gabay.grading.response import Response
from gabay.store.records import ExamFacts
from gabay.store.results import ResultsStore


@dataclass(frozen=True)
class RegradeSummary:
    """What a re-grade did: response ids given a new version, and how many stayed as they were."""

    exam_id: str
    answer_key_version: int
    regraded: list[str] = field(default_factory=list)
    unchanged: int = 0


def regrade_exam(store: ResultsStore, key: AnswerKey, *, llm: LLMGrader | None = None) -> RegradeSummary:
    """Record ``key`` as the exam's key, then give each stored grade that changes a new version."""
    exam = store.exam(key.exam_id)
    if exam is None:
        raise InvalidInput(f"exam {key.exam_id!r} has no stored submissions to re-grade")
    store.record_exam(ExamFacts(form_id=key.exam_id, title=exam["title"], subject=exam["subject"],
                                teacher_id=exam["teacher_id"], answer_key_version=str(key.version),
                                answer_key=key.model_dump(mode="json")))
    regraded: list[str] = []
    unchanged = 0
    for row in store.graded_submissions(key.exam_id):
        previous = Grade.model_validate(row["grade"])
        new = regrade(previous, key, _response(row, key.exam_id), llm=llm,
                      overrides=_teacher_points(previous))
        if new is previous:
            unchanged += 1
            continue
        store.record_regrade(row["response_id"], new.model_dump(mode="json"), earned=new.points,
                             possible=new.max_points, pending_points=new.pending_max_points,
                             answer_key_version=str(key.version))
        regraded.append(row["response_id"])
    return RegradeSummary(key.exam_id, key.version, regraded, unchanged)


def _response(row: dict[str, Any], exam_id: str) -> Response:
    answers = {a["question_id"]: a.get("answer") for a in row.get("answers") or []}
    return Response.model_validate({"response_id": row["response_id"], "exam_id": exam_id,
                                    "answers": answers}, strict=False)


def _teacher_points(grade: Grade) -> dict[str, float]:
    """Points the teacher decided (essays, reviewed items): a new key does not overrule them."""
    return {i.question_id: i.points for i in grade.items if i.source == "teacher" and i.points is not None}
