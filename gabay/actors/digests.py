"""The digest worker, queue ``digests``: ``send_digests(period)`` fans out, one message per teacher.

The default schedules ``digests-daily`` and ``digests-weekly`` fire ``send_digests`` every hour;
it enqueues ``send_teacher_digest(teacher_id, period, period_start)`` for each teacher whose
latest period is due in their own zone (from ``DIGEST_HOUR``) and has no digest row yet. The
teacher's message claims the row and sends once (:mod:`gabay.digests.service`); a duplicate
message, a retry or the next hourly fan-out finds the row and sends nothing. Bad arguments go to
the dead-letter queue; the store or Redis down, Brevo 429/5xx are retried, nothing sent.
"""

from __future__ import annotations

import datetime as dt
import logging

import dramatiq

from gabay.actors.bound import bound_broker
from gabay.digests.periods import parse_kind
from gabay.digests.service import DigestSender
from gabay.errors import EmailRejected, EmailRetryable, EmailUncertain, InvalidInput
from gabay.mail.delivery import Hook
from gabay.mail.mailer import build_mailer
from gabay.mail.sent_records import SentRecords
from gabay.queues import DIGESTS
from gabay.store.results import ResultsStore

logger = logging.getLogger(__name__)

MAX_RETRIES = 8
MAX_RETRY_AFTER_MS = 15 * 60 * 1000
FINAL_ERRORS = (InvalidInput, EmailRejected, EmailUncertain)

broker = bound_broker()
settings = broker.settings
sender = DigestSender(settings, ResultsStore.from_settings(settings), SentRecords(broker.client, settings),
                      build_mailer(settings), guard=broker.ownership.check)


def parse_start(value: object) -> dt.datetime:
    if not isinstance(value, str):
        raise InvalidInput("period_start is an ISO 8601 time with its offset")
    try:
        start = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"period_start {value!r} is not an ISO 8601 time") from None
    if start.tzinfo is None:
        raise InvalidInput(f"period_start {value!r} has no UTC offset")
    return start


def run(teacher_id: str, period: str, period_start: str, hook: Hook | None = None) -> str:
    """The body of ``send_teacher_digest`` (shared with test variants that inject a hook)."""
    if not isinstance(teacher_id, str) or not teacher_id:
        raise InvalidInput("teacher_id is a teacher's id (st-...)")
    try:
        return sender.send(teacher_id, parse_kind(period), parse_start(period_start), hook=hook)
    except EmailRetryable as exc:
        if exc.retry_after is None:
            raise
        raise dramatiq.Retry(str(exc), delay=min(int(exc.retry_after * 1000), MAX_RETRY_AFTER_MS)) from exc


@dramatiq.actor(queue_name=DIGESTS, max_retries=MAX_RETRIES, min_backoff=2_000, max_backoff=120_000,
                throws=FINAL_ERRORS, time_limit=5 * 60 * 1000)
def send_teacher_digest(teacher_id: str, period: str, period_start: str) -> None:
    """One teacher's digest of one period, sent at most once (and once it is due, exactly once)."""
    run(teacher_id, period, period_start)


@dramatiq.actor(queue_name=DIGESTS, max_retries=5, min_backoff=2_000, max_backoff=60_000,
                throws=(InvalidInput,), time_limit=2 * 60 * 1000)
def send_digests(period: str) -> None:
    """Enqueue the due digest of ``period`` (``daily`` or ``weekly``) of every teacher."""
    due = sender.due(parse_kind(period), dt.datetime.now(dt.UTC))
    for digest in due:
        send_teacher_digest.send(digest.teacher_id, digest.kind, digest.period_start.isoformat())
    logger.info("Digests %s: %d due", period, len(due))
