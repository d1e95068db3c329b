"""What the pipelines hand the results store: plain, typed facts, no gabay models of theirs.

The store sits below the feedback and question packages, so they convert their own models into
these (see ``gabay.feedback.stored`` and ``gabay.questions.stored``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExamFacts:
    form_id: str
    title: str
    subject: str
    teacher_id: str | None
    answer_key_version: str


@dataclass(frozen=True)
class SubmissionFacts:
    """One graded submission whose email went out (``email_state`` ``sent``)."""

    response_id: str
    form_id: str
    student_id: str
    submitted_at: dt.datetime
    language: str
    answers: list[dict[str, Any]]
    grades: list[dict[str, Any]]
    earned: float
    possible: float
    pending_points: float
    percent: int | None
    feedback_summary: str | None
    feedback_source: str
    job_id: str
    answer_key_version: str
    email_state: str = "sent"
    email_via: str | None = None
    email_message_id: str | None = None
    outbox_file: str | None = None


@dataclass(frozen=True)
class QuestionFacts:
    """The outcome of one question request: accepted questions with verdicts, rejected drafts."""

    request_id: str
    document_id: str
    count: int
    job_id: str
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    shortfall: str | None = None


@dataclass(frozen=True)
class Forgotten:
    """A submission removed by ``forget_student``: what else to remove (job record, .eml file)."""

    response_id: str
    job_id: str
    outbox_file: str | None
