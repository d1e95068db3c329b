"""Deferring a message: move this delivery to the due set with a delay and skip it.

Used by the rate limits: a held-back message is not an error. It keeps its id and its retry count
(no retry is used) and never reaches the dead-letter queue. The move is one Redis script (out of
this process's acks set, into the due set, with its updated options), so a crash can neither
lose nor duplicate it; Dramatiq's ack of the skipped delivery is then skipped too.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, NoReturn

from dramatiq import Message
from dramatiq.middleware import SkipMessage

from gabay.cluster.due import DueSet
from gabay.cluster.intake import Intake

logger = logging.getLogger(__name__)

#: Message option counting how often this message was deferred (for benchmarks and tests).
DEFERRALS_OPTION = "gabay_deferrals"


class Deferred(SkipMessage):
    """Raised from ``before_process_message`` after the message was re-enqueued."""


class _QuietDeferrals(logging.Filter):
    """Drop Dramatiq's WARNING "Message ... was skipped." when the skip was a deferral.

    A backlog held by a limit would otherwise log one warning per deferral; ``defer`` logs its
    own DEBUG line with the reason instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self.deferring = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(self.deferring, "active", False) and "was skipped" in record.getMessage():
            self.deferring.active = False
            return False
        return True


_quiet = _QuietDeferrals()
logging.getLogger("dramatiq.worker.WorkerThread").addFilter(_quiet)


def defer(due: DueSet, intake: Intake, message: Message, delay_ms: int, reason: str,
          options: dict[str, Any] | None = None) -> None:
    """Move ``message`` to the due set, to run no sooner than ``delay_ms`` from now; skip it.

    ``options`` are merged into its options (a limit uses them to remember a reservation).
    A Redis error propagates: the gate could not decide, and the broker puts the message back.
    """
    deferrals = int(message.options.get(DEFERRALS_OPTION, 0)) + 1
    updated = message.copy(options={**(options or {}), DEFERRALS_OPTION: deferrals})
    updated.options.pop("eta", None)
    if not due.park(intake.worker_id, updated, delay_ms):
        logger.warning("Message %s was no longer this process's to defer (given to another).",
                       message.message_id)
    intake.disown(message, deferred=True)  # its ack here must not reach Redis: it waits in the due set
    logger.debug("Deferred %s by %d ms (%s).", message.message_id, delay_ms, reason)
    skip_quietly(reason)


def skip_quietly(reason: str) -> NoReturn:
    """Skip the message being processed without Dramatiq's "was skipped" warning (it waits)."""
    _quiet.deferring.active = True
    raise Deferred(reason)
