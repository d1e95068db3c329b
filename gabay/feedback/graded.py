"""Grading before feedback: the points of a submission's grade, kept on its feedback job record.

A submission whose answers have an answer key (``correct_answer``) but no ``points`` is graded
against that key (:mod:`gabay.grading`: partial credit, tolerances, normalised short answers,
rubric grading by the LLM chain) before it is scored, so that the email states the computed
score. The grade is kept on the job record (``details["grade"]``) with the key's digest: a retry
or a second stage reuses it instead of grading (and paying) again; a changed key gives a new grade
version. Points the teacher gave are kept for items the key cannot grade (essays).
"""

from __future__ import annotations

from gabay.feedback.submission import Submission
from gabay.grading.chain import build_llm_grader
from gabay.grading.grade import Grade
from gabay.grading.grader import grade_submission
from gabay.grading.key import key_from_submission
from gabay.grading.points import fill_points
from gabay.jobs import JobRecord, JobStore, LLMCall
from gabay.settings import Settings

GRADE_DETAIL = "grade"


def needs_grading(submission: Submission) -> bool:
    """Some answer has a key but no points: code must grade it before the feedback."""
    return any(a.points is None and not a.is_open for a in submission.answers)


def stored_grade(record: JobRecord) -> Grade | None:
    stored = record.details.get(GRADE_DETAIL)
    return Grade.model_validate(stored) if isinstance(stored, dict) else None


def grade_once(settings: Settings, store: JobStore, job_id: str, submission: Submission) -> Grade:
    """The grade of ``submission`` under the key it carries: the stored one, or a new version."""
    key = key_from_submission(submission)
    earlier = stored_grade(store.get(job_id))
    if earlier is not None and earlier.answer_key_digest == key.digest():
        return earlier
    def record_call(call: LLMCall) -> None:
        store.add_call(job_id, call)

    grader = build_llm_grader(settings, record_call)
    grade = grade_submission(key, submission, llm=grader)
    if earlier is not None:
        grade = grade.model_copy(update={"version": earlier.version + 1})

    def keep(record: JobRecord) -> None:
        record.details[GRADE_DETAIL] = grade.model_dump(mode="json")

    store.update(job_id, keep)
    return grade


def with_grade(settings: Settings, store: JobStore, job_id: str, submission: Submission) -> Submission:
    """``submission`` with the points of its grade when it needs one, else as it is."""
    if not needs_grading(submission):
        return submission
    graded: Submission = fill_points(submission, grade_once(settings, store, job_id, submission))
    return graded
