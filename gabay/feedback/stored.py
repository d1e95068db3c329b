"""A sent submission as the results store keeps it: exam, grades, email state, the job's calls.

Names and addresses are not stored: the student and teacher are pseudonymous ids
(:func:`gabay.store.identity.person_id`), the student's name in the feedback summary becomes
``[student]``, the answer key a version digest.
"""

from __future__ import annotations

import re
from pathlib import Path

from gabay.feedback.scoring import Score
from gabay.feedback.submission import Submission
from gabay.jobs import JobRecord
from gabay.mail.mailer import Delivery
from gabay.store.identity import content_version, person_id
from gabay.store.records import ExamFacts, SubmissionFacts
from gabay.store.results import ResultsStore


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


def exam_facts(submission: Submission) -> ExamFacts:
    teacher = submission.teacher
    return ExamFacts(form_id=submission.form.id, title=submission.form.title,
                     subject=submission.form.subject,
                     teacher_id=person_id(str(teacher.email)) if teacher is not None else None,
                     answer_key_version=answer_key_version(submission))


def submission_facts(submission: Submission, facts: Score, delivery: Delivery, source: str,
                     record: JobRecord) -> SubmissionFacts:
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
    )


def store_sent(results: ResultsStore, submission: Submission, facts: Score, delivery: Delivery,
               source: str, record: JobRecord) -> dict[str, str]:
    """Write the exam, the submission and the job's LLM calls; the link for the job record."""
    results.record_exam(exam_facts(submission))
    link = results.record_submission(submission_facts(submission, facts, delivery, source, record))
    results.record_calls(record.id, record.calls,
                         {stage: timing.started_at for stage, timing in record.stages.items()})
    return link
