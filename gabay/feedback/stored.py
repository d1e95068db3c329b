"""A sent submission as the results store keeps it: exam, grades, email state, the job's calls.

Student names and addresses are not stored: the student and teacher are pseudonymous ids
(:func:`gabay.store.identity.person_id`), the student's name in the feedback summary becomes
``[student]``, the answer key a version digest. The teacher's address and name are kept once, in
``teachers`` (revision 0004): their exam reports and digests are emailed to them.

The grade is stored too (``submissions.grade``, a :class:`~gabay.grading.grade.Grade` dump: ids,
points and digests, no answer text) with the key it was computed against (``exams.answer_key``):
the exam analytics read them. It is the grade kept on the job record when there is one for the
submission's key; otherwise it is computed here, by the key's rules only (no LLM call), with the
teacher's points for the items the key cannot grade (essays).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from gabay.errors import InvalidInput
from gabay.feedback.graded import stored_grade
from gabay.feedback.scoring import Score
from gabay.feedback.submission import Submission
from gabay.grading.grade import Grade
from gabay.grading.grader import grade_submission
from gabay.grading.key import AnswerKey, key_from_submission
from gabay.jobs import JobRecord
from gabay.mail.mailer import Delivery
from gabay.store.identity import content_version, person_id
from gabay.store.records import ExamFacts, SubmissionFacts, TeacherFacts
from gabay.store.results import ResultsStore

logger = logging.getLogger(__name__)


def without_name(text: str, name: str) -> str:
    """``text`` with the student's name (whole, or any part of two letters or more) as ``[student]``."""
    parts = sorted({name.strip(), *name.split()}, key=len, reverse=True)
    words = [re.escape(p) for p in parts if len(p) >= 2]
    if not words:
        return text
    return re.sub(r"\b(?:" + "|".join(words) + r")\b", "[student]", text, flags=re.IGNORECASE)


def answer_key_version(submission: Submission) -> str:
    """The version of the form's answer key: question ids, keys and maximum points."""
    return content_version([[a.question_id, a.correct_answer, a.max_points] for a in submission.answers])


def teacher_points(key: AnswerKey, submission: Submission) -> dict[str, float]:
    """The points a teacher gave to items the key cannot grade (essays): the grade's overrides."""
    points = {}
    for answer in submission.answers:
        item = key.item(answer.question_id)
        if answer.points is not None and item is not None and item.type == "essay":
            points[answer.question_id] = answer.points
    return points


def graded(submission: Submission, record: JobRecord) -> tuple[AnswerKey, Grade] | None:
    """The submission's key and grade: the job record's grade under that key, else a new one.

    None (logged) when the submission's key is not one the grader reads: the email is out, so
    the row is stored without a grade rather than failing the job.
    """
    try:
        key = key_from_submission(submission)
        kept = stored_grade(record)
        if kept is not None and kept.answer_key_digest == key.digest():
            return key, kept
        return key, grade_submission(key, submission, llm=None, overrides=teacher_points(key, submission))
    except InvalidInput as exc:
        logger.warning("Submission %s stored without a grade: %s", submission.response_id, exc)
        return None


def exam_facts(submission: Submission, key: AnswerKey | None = None) -> ExamFacts:
    teacher = submission.teacher
    return ExamFacts(form_id=submission.form.id, title=submission.form.title,
                     subject=submission.form.subject,
                     teacher_id=person_id(str(teacher.email)) if teacher is not None else None,
                     answer_key_version=answer_key_version(submission),
                     answer_key=key.model_dump(mode="json") if key is not None else None)


def submission_facts(submission: Submission, facts: Score, delivery: Delivery, source: str,
                     record: JobRecord, grade: Grade | None = None) -> SubmissionFacts:
    feedback = record.details.get("feedback")
    summary = feedback.get("summary") if isinstance(feedback, dict) else None
    return SubmissionFacts(
        response_id=submission.response_id,
        form_id=submission.form.id,
        student_id=person_id(str(submission.student.email)),
        submitted_at=submission.submitted_at,
        language=submission.language,
        answers=[{"question_id": a.question_id, "type": a.type, "answer": a.answer}
                 for a in submission.answers],
        grades=[{"question_id": f.question_id, "outcome": f.outcome.value, "points": f.points,
                 "max_points": f.max_points} for f in facts.facts],
        earned=facts.earned, possible=facts.possible, pending_points=facts.pending_points,
        percent=facts.percent,
        feedback_summary=without_name(summary, submission.student.name) if isinstance(summary, str) else None,
        feedback_source=source,
        job_id=record.id,
        answer_key_version=answer_key_version(submission),
        email_via=delivery.via or None,
        email_message_id=delivery.message_id,
        outbox_file=Path(delivery.outbox_path).name if delivery.outbox_path else None,
        grade=grade.model_dump(mode="json") if grade is not None else None,
    )


def store_sent(results: ResultsStore, submission: Submission, facts: Score, delivery: Delivery,
               source: str, record: JobRecord) -> dict[str, str]:
    """Write the exam (with its key), the submission (with its grade) and the job's LLM calls.

    Returns the link for the job record.
    """
    key, grade = graded(submission, record) or (None, None)
    if submission.teacher is not None:  # the address the exam's report and digests go to
        teacher = submission.teacher
        results.record_teacher(TeacherFacts(person_id(str(teacher.email)), str(teacher.email), teacher.name))
    results.record_exam(exam_facts(submission, key))
    link = results.record_submission(submission_facts(submission, facts, delivery, source, record, grade))
    results.record_calls(record.id, record.calls,
                         {stage: timing.started_at for stage, timing in record.stages.items()})
    return link
