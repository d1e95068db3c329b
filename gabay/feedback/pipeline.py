"""One submission from message to email: validate, score, write feedback, render, send once.

Stages recorded on the job (kind ``feedback``): ``feedback`` (LLM or offline), ``render`` (Jinja +
CSS inlining) and ``send`` (Brevo or the outbox). A second run of the same submission (a retry, a
duplicate enqueue, a recovered message) finds the sent record and sends nothing; a retry after a
failed send reuses the feedback already written instead of paying for a second LLM call.

After the send, the submission is written to the results store (:mod:`gabay.feedback.stored`)
before the job is marked succeeded, and the job record links to the row (``details.stored``).
If the store fails, the job fails with a retryable error: the retry finds the sent record, sends
nothing, and writes the (idempotent) rows again. Once stored, the exam's analytics are requested
(debounced, :mod:`gabay.feedback.analytics_request`); a Redis error there fails nothing. An email
that fails for good is kept as ids in ``email_failures`` (for the teacher's digest), best effort.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis

from gabay.cluster.intake import Guard, OwnershipLost, always_owned
from gabay.errors import (
    EmailError,
    EmailRejected,
    EmailUncertain,
    InvalidInput,
    ProviderHeld,
    StoreUnavailable,
)
from gabay.feedback.analytics_request import AnalyticsRequests, Enqueue, current_broker_enqueue
from gabay.feedback.email import render_feedback_email, subject_for
from gabay.feedback.graded import with_grade
from gabay.feedback.model import Feedback
from gabay.feedback.scoring import Score, score
from gabay.feedback.stored import store_sent
from gabay.feedback.submission import (
    Submission,
    fingerprint,
    idempotency_key_for,
    job_id_for,
    parse_submission,
)
from gabay.feedback.writer import write_feedback
from gabay.jobs import JobRecord, JobStatus, JobStore
from gabay.llm.job_calls import JobCalls
from gabay.mail.delivery import Hook, deliver_once
from gabay.mail.mailer import Delivery, Mailer, build_mailer
from gabay.mail.outbox import eml_name
from gabay.mail.sent_records import SentRecords
from gabay.settings import Settings
from gabay.store.identity import person_id
from gabay.store.results import ResultsStore

logger = logging.getLogger(__name__)

KIND = "feedback"


@dataclass(frozen=True)
class FeedbackContext:
    """What a worker needs to process submissions; the mailer is chosen once, here.

    ``guard`` raises OwnershipLost when this process no longer owns the job it runs (see
    :mod:`gabay.middleware.ownership`); it is called before each side effect: the LLM call, the
    email, the final job record. ``results`` is the results store (None: nothing is stored);
    ``analytics`` asks for the exam's analytics once a submission is stored (None: it does not).
    """

    settings: Settings
    store: JobStore
    records: SentRecords
    mailer: Mailer
    guard: Guard = always_owned
    results: ResultsStore | None = None
    analytics: AnalyticsRequests | None = None

    @classmethod
    def build(cls, settings: Settings, client: redis.Redis, guard: Guard = always_owned,
              results: ResultsStore | None = None,
              enqueue: Enqueue = current_broker_enqueue) -> FeedbackContext:
        return cls(settings, JobStore(client, settings), SentRecords(client, settings),
                   build_mailer(settings), guard, results or ResultsStore.from_settings(settings),
                   AnalyticsRequests(client, settings, enqueue))


def enqueue_record(ctx: FeedbackContext, submission: Submission) -> str:
    """Create (or find) the job record of ``submission``; its id is derived from the response id.

    The first content sent for a response id wins: the same response id with other content is
    refused (InvalidInput), at ``send()`` and in the worker, unless that job failed for good,
    when the new content is a new attempt. The same content again is the same job.
    """
    job_id = job_id_for(submission.response_id)
    digest = fingerprint(submission)
    record, created = ctx.store.create_or_find(KIND, job_id, response_id=submission.response_id,
                                               fingerprint=digest)
    if created:
        return job_id
    known = record.details.get("fingerprint")
    if record.status is JobStatus.FAILED:  # enqueued again after a final failure: a new attempt
        ctx.store.update(job_id, lambda r: _requeued(r, digest))
    elif known is not None and known != digest:
        raise InvalidInput(f"response_id {submission.response_id!r} was already submitted with "
                           "other content; a different submission needs its own response_id")
    elif known is None:
        ctx.store.update(job_id, lambda r: r.details.setdefault("fingerprint", digest))
    return job_id


def _requeued(record: JobRecord, digest: str) -> None:
    if record.status is JobStatus.FAILED:
        record.status = JobStatus.QUEUED
        record.error = None
        record.details["fingerprint"] = digest


def job_id_of(data: Any) -> str:
    """The job id of a message, even an invalid one (then from whatever response id it has)."""
    response_id = data.get("response_id") if isinstance(data, dict) else None
    return job_id_for(response_id if isinstance(response_id, str) else repr(data)[:200])


def process(ctx: FeedbackContext, data: Any, *, final_attempt: bool = True,
            hook: Hook | None = None) -> dict[str, Any]:
    """Run the pipeline for one message; record success or failure on the job, then return/raise."""
    job_id = job_id_of(data)
    try:
        submission = parse_submission(data)
    except InvalidInput as exc:
        ctx.store.create(KIND, job_id)
        ctx.store.fail(job_id, str(exc))
        raise
    enqueue_record(ctx, submission)
    try:
        return _run(ctx, submission, job_id, hook)
    except OwnershipLost:
        raise  # another run owns the job now: it records the outcome
    except ProviderHeld as held:  # every provider busy: the job waits (no retry is spent)
        reason = f"waiting for the LLM provider budget: {held}"
        ctx.store.update(job_id, lambda record: _unless_done(record, JobStatus.QUEUED, reason))
        raise
    except (EmailRejected, EmailUncertain) as final:
        reason = str(final)
        ctx.store.update(job_id, lambda record: _unless_done(record, JobStatus.FAILED, reason))
        note_email_failure(ctx, submission, "rejected" if isinstance(final, EmailRejected) else "uncertain")
        raise
    except Exception as exc:
        status = JobStatus.FAILED if final_attempt else JobStatus.QUEUED
        error = (f"gave up after the last retry: {exc}" if final_attempt else f"will retry: {exc}")
        ctx.store.update(job_id, lambda record: _unless_done(record, status, error))
        if final_attempt and isinstance(exc, EmailError):
            note_email_failure(ctx, submission, "gave_up")
        raise


def note_email_failure(ctx: FeedbackContext, submission: Submission, kind: str) -> None:
    """Keep a feedback email that failed for good in the store, for the teacher's digest (ids only).

    Best effort: a store that is down loses the count, never the job's outcome.
    """
    if ctx.results is None:
        return
    teacher = person_id(str(submission.teacher.email)) if submission.teacher is not None else None
    try:
        ctx.results.record_email_failure(submission.response_id, submission.form.id, teacher, kind)
    except StoreUnavailable as exc:
        logger.warning("Email failure of %s not kept for the digests: %s", submission.response_id, exc)


def _unless_done(record: JobRecord, status: JobStatus, error: str) -> None:
    """Record a failure, unless another attempt already succeeded (the email is out)."""
    if record.status is not JobStatus.SUCCEEDED:
        record.status = status
        record.error = error


def _run(ctx: FeedbackContext, submission: Submission, job_id: str, hook: Hook | None) -> dict[str, Any]:
    submission = with_grade(ctx.settings, ctx.store, job_id, submission)
    facts = score(submission)
    sent = ctx.records.get(job_id)
    if sent.get("state") == "sent":
        logger.info("Submission %s was sent before; nothing to do", submission.response_id)
        record = ctx.store.get(job_id)
        if record.status is JobStatus.SUCCEEDED and record.result:
            return record.result
        source = str(record.details.get("feedback_source", "unknown"))
        return _succeed(ctx, job_id, submission, facts, Delivery.from_record(sent), source)
    feedback, source = _feedback(ctx, submission, facts, job_id)
    ctx.guard()
    ctx.store.stage_started(job_id, "render")
    message = render_feedback_email(ctx.settings, submission, facts, feedback)
    ctx.store.stage_finished(job_id, "render")
    ctx.store.stage_started(job_id, "send")
    key = idempotency_key_for(submission.response_id)
    delivery = deliver_once(ctx.mailer, ctx.records, job_id, key, message,
                            eml_name(submission.response_id, job_id), hook, guard=ctx.guard)
    ctx.store.stage_finished(job_id, "send")
    ctx.guard()
    return _succeed(ctx, job_id, submission, facts, delivery, source)


def _feedback(ctx: FeedbackContext, submission: Submission, facts: Score,
              job_id: str) -> tuple[Feedback, str]:
    """The feedback written by an earlier attempt of this job, or new feedback."""
    details = ctx.store.get(job_id).details
    if isinstance(details.get("feedback"), dict):
        return Feedback.model_validate(details["feedback"]), str(details.get("feedback_source", ""))
    ctx.guard()
    ctx.store.stage_started(job_id, "feedback")
    calls = JobCalls.shared(ctx.store, job_id, ctx.settings)  # token budget, shared provider limits
    verdicts: list[dict[str, object]] = []  # the rubric's verdict (gabay.feedback.rubric_gate)
    feedback, source = write_feedback(ctx.settings, submission, facts, record=calls.record,
                                      budget=calls.budget, allowance=calls.allow,
                                      report=verdicts.append)
    ctx.guard()

    def keep(record: JobRecord) -> None:
        record.details["feedback"] = feedback.model_dump()
        record.details["feedback_source"] = source
        if verdicts:
            record.details["feedback_rubric"] = verdicts[-1]

    ctx.store.update(job_id, keep)
    ctx.store.stage_finished(job_id, "feedback")
    return feedback, source


def _succeed(ctx: FeedbackContext, job_id: str, submission: Submission, facts: Score,
             delivery: Delivery, source: str) -> dict[str, Any]:
    result = {
        "response_id": submission.response_id,
        "to": str(submission.student.email),
        "subject": subject_for(submission, facts),
        "score": {"earned": facts.earned, "possible": facts.possible, "percent": facts.percent,
                  "pending_points": facts.pending_points, "label": facts.label},
        "questions": [{"question_id": f.question_id, "outcome": f.outcome.value, "points": f.points,
                       "max_points": f.max_points} for f in facts.facts],
        "feedback_source": source,
        "via": delivery.via,
        "message_id": delivery.message_id,
        "outbox_path": delivery.outbox_path,
        "sent_earlier": delivery.earlier,
    }
    stored: dict[str, object] = {}
    if ctx.results is not None:
        record = ctx.store.get(job_id)
        stored["stored"] = store_sent(ctx.results, submission, facts, delivery, source, record)
        if ctx.analytics is not None:
            ctx.analytics.request(submission.form.id)
    ctx.store.succeed(job_id, result, **stored)
    return result
