"""Typed job records: what a question job and a feedback job hold once read back.

``JobRecord.result`` is a plain dict in Redis; these models give it its shape, so that a caller
reads ``job.result.questions[0].answer`` or ``job.result.score.percent`` with a type checker's
help. :func:`typed` picks the model by the record's ``kind``; a kind without a model (a future
one) stays a plain :class:`~gabay.jobs.JobRecord`. Unknown result fields are kept (``extra``), so
an older client reads a newer worker's records.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from gabay.jobs import JobRecord
from gabay.questions.models import QuestionResult


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class FeedbackScore(_Open):
    earned: float
    possible: float
    percent: int | None = None
    pending_points: float = 0.0
    label: str = ""


class FeedbackQuestion(_Open):
    question_id: str
    outcome: str
    points: float | None = None
    max_points: float


class FeedbackResult(_Open):
    """The result of a feedback job: the score, per-question outcomes and where the email went."""

    response_id: str
    to: str
    subject: str
    score: FeedbackScore
    questions: list[FeedbackQuestion]
    feedback_source: str = ""
    via: str = ""
    message_id: str | None = None
    outbox_path: str | None = None
    sent_earlier: bool = False


class QuestionJob(JobRecord):
    """A question generation job (``generate_questions``)."""

    kind: Literal["questions"] = "questions"
    result: QuestionResult | None = None  # type: ignore[assignment]


class FeedbackJob(JobRecord):
    """An exam feedback job (``process_form_response``)."""

    kind: Literal["feedback"] = "feedback"
    result: FeedbackResult | None = None  # type: ignore[assignment]


Job = QuestionJob | FeedbackJob | JobRecord

MODELS: dict[str, type[QuestionJob] | type[FeedbackJob]] = {"questions": QuestionJob, "feedback": FeedbackJob}


def typed(record: JobRecord) -> Job:
    """The record as its kind's model (a plain JobRecord for a kind without one)."""
    model = MODELS.get(record.kind)
    return record if model is None else model.model_validate(record.model_dump())


def parse_job(data: bytes | str) -> Job:
    """A record as stored in Redis (JSON), typed by its kind."""
    return typed(JobRecord.model_validate_json(data))
