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
