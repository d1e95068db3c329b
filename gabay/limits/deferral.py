"""Deferring a message: put a copy back with a delay and skip this delivery.

Used by every limit (caps, rate limits, pause, draining): a held-back message is not an error. The
copy keeps its retry count (no retry is used), it never reaches the dead-letter queue, and the
original delivery is acknowledged by Dramatiq after ``SkipMessage``. A crash between the two steps
can only duplicate the message, never lose it (delivery is at least once).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from dramatiq import Broker, Message
from dramatiq.middleware import SkipMessage

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


def defer(broker: Broker, message: Message, delay_ms: int, reason: str,
          options: dict[str, Any] | None = None) -> None:
    """Re-enqueue ``message`` to run no sooner than ``delay_ms`` from now, then skip it.

    ``delay_ms`` of 0 puts the copy straight back on its queue (at the tail). ``options`` are
    merged into the copy's options (a limit uses them to remember a reservation).
    """
    deferrals = int(message.options.get(DEFERRALS_OPTION, 0)) + 1
    copy = message.copy(options={**(options or {}), DEFERRALS_OPTION: deferrals})
    copy.options.pop("eta", None)
    broker.enqueue(copy, delay=max(int(delay_ms), 0) or None)
    logger.debug("Deferred %s by %d ms (%s).", message.message_id, delay_ms, reason)
    _quiet.deferring.active = True
    raise Deferred(reason)
