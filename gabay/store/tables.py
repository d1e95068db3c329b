"""The tables of the results store (SQLAlchemy 2 declarative models).

The schema itself is made by the Alembic migrations in ``migrations/versions``; these models are
what the code reads and writes, and a test checks that they match the migrated schema. Every
table has a natural key (response id, request id, job id + call index), so a retried job updates
its rows instead of adding new ones.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the results store; ``Base.metadata`` is the schema at head."""


class Exam(Base):
    """A form (exam) as last seen in a submission; no personal data."""

    __tablename__ = "exams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    form_id: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(500))
    teacher_id: Mapped[str | None] = mapped_column(String(80))
    answer_key_version: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: Revision 0003: the answer key (``AnswerKey`` dump) of the latest submission's grade.
    answer_key: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class Submission(Base):
    """One graded submission and the state of its feedback email (one row per response id)."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    response_id: Mapped[str] = mapped_column(String(200), unique=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exams.id"))
    #: A pseudonym (see :func:`gabay.store.identity.student_id`); None once anonymised.
    student_id: Mapped[str | None] = mapped_column(String(80))
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    language: Mapped[str] = mapped_column(String(40))
    #: The student's answers; None once anonymised.
    answers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    grades: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    earned: Mapped[float] = mapped_column(Float)
    possible: Mapped[float] = mapped_column(Float)
    pending_points: Mapped[float] = mapped_column(Float)
    percent: Mapped[int | None] = mapped_column(Integer)
    #: The feedback's summary line; None once anonymised.
    feedback_summary: Mapped[str | None] = mapped_column(Text)
    feedback_source: Mapped[str] = mapped_column(String(200))
    email_state: Mapped[str] = mapped_column(String(20))
    email_via: Mapped[str | None] = mapped_column(String(20))
    email_message_id: Mapped[str | None] = mapped_column(String(300))
    outbox_file: Mapped[str | None] = mapped_column(String(300))
    job_id: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    anonymised_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Revision 0002: the answer key the grades were computed against.
    answer_key_version: Mapped[str | None] = mapped_column(String(80))
    #: Revision 0003: the grade (``Grade`` dump: ids, points, digests; no answer text).
    grade: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))

    __table_args__ = (
        Index("ix_submissions_student_id", "student_id"),
        Index("ix_submissions_submitted_at", "submitted_at"),
    )


class ExamAnalytics(Base):
    """The latest analytics report of one exam (revision 0003): aggregates only, no student ids."""

    __tablename__ = "exam_analytics"

    form_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: ``ExamReport`` dump (``gabay.analytics.models``).
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The grades the report was computed from (current key, not anonymised).
    submissions: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class QuestionResult(Base):
    """The outcome of one question-generation request (one row per request id)."""

    __tablename__ = "question_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(100), unique=True)
    document_id: Mapped[str] = mapped_column(String(200))
    count: Mapped[int] = mapped_column(Integer)
    #: ``[{"question": {...}, "verdict": {...}}]``: the questions of the result and why they passed.
    accepted: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    #: ``[{"draft_id", "question", "reason"}]``: the drafts validation dropped.
    rejected: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    shortfall: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class LedgerEntry(Base):
    """One LLM call (offline ones included) and what it cost; one row per (job id, call index)."""

    __tablename__ = "cost_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(100))
    call_index: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(100))
    provider: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    input_tokens: Mapped[int] = mapped_column(Integer)
    cached_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    cost_usd: Mapped[float] = mapped_column(Float)
    ok: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("job_id", "call_index", name="uq_cost_ledger_job_call"),
        Index("ix_cost_ledger_at", "at"),
    )


# -- reports and digests (revision 0004) --------------------------------------------------------


class Teacher(Base):
    """A teacher as the submissions name them: the address their reports and digests go to.

    Keyed by the pseudonymous id exams carry (``exams.teacher_id``). ``time_zone`` and
    ``digests_opt_out`` are the teacher's own settings: a new submission never changes them.
    """

    __tablename__ = "teachers"

    teacher_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    #: None for a teacher known only from ``gabay digests opt-out`` (no submission yet).
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    #: IANA zone of the teacher's digests; None: ``SCHEDULE_TIMEZONE``.
    time_zone: Mapped[str | None] = mapped_column(String(64))
    digests_opt_out: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ExamReportFile(Base):
    """One PDF report of an exam (one row per analytics version): its file and its email."""

    __tablename__ = "exam_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: ``rp-<uuid5>`` of the exam and its analytics' time: the job id and the row's natural key.
    report_id: Mapped[str] = mapped_column(String(100), unique=True)
    form_id: Mapped[str] = mapped_column(String(200))
    teacher_id: Mapped[str | None] = mapped_column(String(80))
    analytics_computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: Relative to ``GABAY_DATA_DIR``.
    path: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(Integer)
    #: ``pending`` (written, not sent yet) or ``sent``.
    email_state: Mapped[str] = mapped_column(String(20))
    email_via: Mapped[str | None] = mapped_column(String(20))
    email_message_id: Mapped[str | None] = mapped_column(String(300))
    outbox_file: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_exam_reports_form_id", "form_id"),)


class DigestRun(Base):
    """One digest of one teacher for one period, claimed before it is sent: at most one per period."""

    __tablename__ = "digests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    teacher_id: Mapped[str] = mapped_column(String(80))
    #: ``daily`` or ``weekly``.
    period: Mapped[str] = mapped_column(String(20))
    #: The period's first moment (local midnight in the teacher's zone), in UTC.
    period_start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: ``claimed``, ``sent``, ``empty`` (nothing happened: no email) or ``opted_out``.
    state: Mapped[str] = mapped_column(String(20))
    job_id: Mapped[str] = mapped_column(String(100))
    email_via: Mapped[str | None] = mapped_column(String(20))
    email_message_id: Mapped[str | None] = mapped_column(String(300))
    outbox_file: Mapped[str | None] = mapped_column(String(300))
    claimed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("teacher_id", "period", "period_start", name="uq_digests_teacher_period"),
    )


class EmailFailure(Base):
    """A feedback email that failed for good (rejected, uncertain, out of retries): for the digests.

    Ids only: the response, its exam and its teacher; no student id, no address, no error text.
    """

    __tablename__ = "email_failures"

    response_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    form_id: Mapped[str] = mapped_column(String(200))
    teacher_id: Mapped[str | None] = mapped_column(String(80))
    #: ``rejected``, ``uncertain`` or ``gave_up``.
    kind: Mapped[str] = mapped_column(String(40))
    failed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_email_failures_teacher_id", "teacher_id"),)
