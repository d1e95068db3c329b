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
    #: The ``AnswerKey`` dump the latest grade was computed against (None: not known).
    answer_key: dict[str, Any] | None = None


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
    #: The ``Grade`` dump (None: not graded by code).
    grade: dict[str, Any] | None = None


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


@dataclass(frozen=True)
class StoredAnalytics:
    """The analytics row of one exam: the report (an ``ExamReport`` dump) and what it counted."""

    form_id: str
    report: dict[str, Any]
    submissions: int
    computed_at: dt.datetime


@dataclass(frozen=True)
class ExamOverview:
    """One exam as the analytics list shows it: ids and counts, nothing personal."""

    form_id: str
    title: str
    subject: str
    submissions_stored: int
    submissions_counted: int | None
    computed_at: dt.datetime | None


# -- reports and digests ------------------------------------------------------------------------


@dataclass(frozen=True)
class TeacherFacts:
    """The teacher a submission names: the address their reports and digests go to."""

    teacher_id: str
    email: str
    name: str | None = None


@dataclass(frozen=True)
class StoredReport:
    """One PDF report of an exam: its file (relative to the data directory) and its email."""

    report_id: str
    form_id: str
    teacher_id: str | None
    analytics_computed_at: dt.datetime
    path: str
    size_bytes: int
    email_state: str = "pending"
    email_via: str | None = None
    email_message_id: str | None = None
    outbox_file: str | None = None


@dataclass(frozen=True)
class DigestClaim:
    """The digest row of (teacher, period, start) after a claim; ``claimed`` says whether it is new."""

    teacher_id: str
    period: str
    period_start: dt.datetime
    state: str
    job_id: str
    claimed: bool


@dataclass(frozen=True)
class ActivityRow:
    """A submission of a teacher's exam as a digest counts it: no student id, no answers."""

    form_id: str
    title: str
    percent: int | None
    email_state: str
    submitted_at: dt.datetime
