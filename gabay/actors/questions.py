"""The question pipeline: retrieval -> generation -> validation, one actor per queue.

``generate_questions.send(request)`` validates the request, creates the job record and enqueues
the first stage (``generate_questions`` is the retrieval actor ``retrieve_passages``, see
:mod:`gabay.actors.validated`); each stage sends the next one a small typed message (retrieval
passes on only the selected passages). A stage that fails for want of a provider is retried by
Dramatiq; bad input and rejected provider calls are final (``throws=``: dead-lettered at once, no
retries) and the job record shows the error. An optional callback posts the result, signed, with
retries.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage
from pydantic import ValidationError

from gabay.actors.bound import bound_broker
from gabay.actors.validated import validated_actor
from gabay.callbacks.delivery import deliver
from gabay.cluster.intake import OwnershipLost
from gabay.errors import (
    InvalidInput,
    JobFinished,
    JobNotFound,
    ProviderHeld,
    ProviderRejected,
    describe_validation,
)
from gabay.jobs import JobStatus, JobStore
from gabay.llm.held import wait_for_budget
from gabay.questions.models import QuestionTask, parse_request
from gabay.questions.stages import QuestionStages
from gabay.queues import GENERATION, RETRIEVAL, VALIDATION
from gabay.store.results import ResultsStore

logger = logging.getLogger(__name__)

broker = bound_broker()
settings = broker.settings

STAGE_RETRIES = 3
STAGE_OPTIONS: dict[str, Any] = {
    "max_concurrency": settings.question_generation_concurrency,
    "max_retries": STAGE_RETRIES,
    "min_backoff": 2_000,
    "max_backoff": 60_000,
    "throws": (InvalidInput, ProviderRejected),
}
store = JobStore(broker.client, settings)
stages = QuestionStages(store, settings, guard=broker.ownership.check,
                        results=ResultsStore.from_settings(settings))


def prepare(request: Any) -> tuple[str, tuple[Any, ...] | None]:
    """Validate ``request`` and create its job (id: ``request_id`` or a new uuid).

    Idempotent by request id: when a job with that id is queued, running or succeeded, its id is
    returned and nothing is enqueued (no second pipeline, no second bill). A failed job runs
    again; ``regenerate: true`` runs a finished job again as new (a queued or running one is
    still returned as it is).
    """
    parsed = parse_request(request)
    job_id = parsed.request_id or uuid.uuid4().hex
    details = {"document_id": parsed.document.id, "count": parsed.count,
               "question_types": parsed.question_types}
    record, created = store.create_or_find("questions", job_id, **details)
    if not created:
        if record.status in (JobStatus.QUEUED, JobStatus.RUNNING):
            return job_id, None
        if record.status is JobStatus.SUCCEEDED and not parsed.regenerate:
            return job_id, None
        store.reopen(job_id, **details)
    return job_id, (parsed.model_dump(mode="json", exclude={"regenerate"}), job_id)


@validated_actor(prepare, queue_name=RETRIEVAL, **STAGE_OPTIONS)
def retrieve_passages(request: Any, job_id: str | None = None) -> None:
    """Stage 1: split the document, pick the passages, hand them to drafting."""
    job_id = job_id or _job_id_of(request)
    with _failures_recorded(job_id, request.get("callback_url") if isinstance(request, dict) else None):
        task = stages.retrieve(job_id, parse_request(request))
        _send_stage(draft_questions, task)


@dramatiq.actor(queue_name=GENERATION, **STAGE_OPTIONS)
def draft_questions(task: Any) -> None:
    """Stage 2: draft more questions than requested, with their answer keys."""
    parsed = _parse_task(task)
    with _failures_recorded(parsed.job_id, parsed.callback_url):
        _send_stage(validate_questions, stages.draft(parsed))


@dramatiq.actor(queue_name=VALIDATION, **STAGE_OPTIONS)
def validate_questions(task: Any) -> None:
    """Stage 3: check the drafts; another drafting round if too few survive; then the result.

    The result is stored (results store) before the job succeeds; a retry after a store failure
    finds the concluded result on the job record and stores it without validating again.
    """
    parsed = _parse_task(task)
    with _failures_recorded(parsed.job_id, parsed.callback_url):
        concluded = stages.unstored(parsed.job_id)
        if concluded is None:
            checked = stages.validate(parsed)
            if stages.needs_another_round(checked):
                next_round = checked.model_copy(update={"round": checked.round + 1})
                _send_stage(draft_questions, next_round)
                return
            concluded = stages.conclude(checked)
        stages.succeed(parsed.job_id, *concluded)
        if parsed.callback_url:
            _schedule_callback(parsed.job_id, parsed.callback_url)


CALLBACK_RETRIES = settings.callback_max_retries


# claim_check: the URL (it may carry a token) is kept out of the message, its logs and dead letters
@dramatiq.actor(queue_name=VALIDATION, max_retries=CALLBACK_RETRIES, min_backoff=1_000,
                max_backoff=120_000, throws=(InvalidInput, JobNotFound), claim_check=lambda *args: ())
def deliver_callback(job_id: str, url: str) -> None:
    """POST the job's result to ``url`` (signed); retried with backoff, dead-lettered at the end.

    Every attempt is recorded on the job (``record.callback``, see gabay.callbacks.delivery).
    """
    deliver(store, settings, job_id, url, last_attempt=_last_attempt(CALLBACK_RETRIES))


#: The pipeline's entry point: ``generate_questions.send(request)`` -> job id.
generate_questions = retrieve_passages


def _send_stage(actor: dramatiq.Actor[..., None], task: QuestionTask) -> None:
    """Enqueue the next stage; its message id is the job id, like the entry message's."""
    message = actor.message(task.model_dump(mode="json")).copy(message_id=task.job_id)
    broker.enqueue(message)


def _job_id_of(request: Any) -> str:
    given = request.get("request_id") if isinstance(request, dict) else None
    if isinstance(given, str) and 0 < len(given) <= 100:
        return given
    message = CurrentMessage.get_current_message()
    return message.message_id if message is not None else uuid.uuid4().hex


def _parse_task(task: Any) -> QuestionTask:
    try:
        return QuestionTask.model_validate(task)
    except ValidationError as exc:
        job_id = task.get("job_id") if isinstance(task, dict) else None
        error = InvalidInput("invalid stage message: " + describe_validation(exc, subject="request"))
        if isinstance(job_id, str):
            _fail(job_id, str(error))
        raise error from None


class _failures_recorded:  # a context manager named like the function it acts as
    """Turn a final failure into a failed job record (and its callback); always re-raise."""

    def __init__(self, job_id: str, callback_url: str | None) -> None:
        self.job_id = job_id
        self.callback_url = callback_url

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or isinstance(exc, OwnershipLost):
            return False  # OwnershipLost: another run owns the job now and records its outcome
        if isinstance(exc, JobFinished):
            logger.info("%s", exc)  # a late duplicate: nothing to do
            return True
        if isinstance(exc, ProviderHeld):  # every provider busy: wait, without spending a retry
            wait_for_budget(broker.due, broker.intake, exc)
        if isinstance(exc, InvalidInput | ProviderRejected) or _last_attempt(STAGE_RETRIES):
            _fail(self.job_id, str(exc) or type(exc).__name__)
            if self.callback_url:
                _schedule_callback(self.job_id, self.callback_url)
        return False


def _last_attempt(max_retries: int) -> bool:
    message = CurrentMessage.get_current_message()
    return message is None or int(message.options.get("retries", 0)) >= max_retries


def _fail(job_id: str, error: str) -> None:
    try:
        store.fail(job_id, error)
    except JobNotFound:
        store.create("questions", job_id)
        store.fail(job_id, error)


def _schedule_callback(job_id: str, url: str) -> None:
    broker.enqueue(deliver_callback.message(job_id, url).copy(message_id=job_id))
