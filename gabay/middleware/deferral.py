"""Deferring a message: put a copy back with a delay and skip this delivery.

Used by every limit (caps, rate limits, pause, draining): a held-back message is not an error. The
copy keeps its retry count (no retry is used), it never reaches the dead-letter queue, and the
original delivery is acknowledged by Dramatiq after ``SkipMessage``. A crash between the two steps
can only duplicate the message, never lose it (delivery is at least once).
"""

from __future__ import annotations

import logging

from dramatiq import Broker, Message
from dramatiq.middleware import SkipMessage

logger = logging.getLogger(__name__)

#: Message option counting how often this message was deferred (for benchmarks and tests).
DEFERRALS_OPTION = "gabay_deferrals"


class Deferred(SkipMessage):
    """Raised from ``before_process_message`` after the message was re-enqueued."""


def defer(broker: Broker, message: Message, delay_ms: int, reason: str) -> None:
    """Re-enqueue ``message`` to run no sooner than ``delay_ms`` from now, then skip it.

    ``delay_ms`` of 0 puts the copy straight back on its queue (at the tail).
    """
    deferrals = int(message.options.get(DEFERRALS_OPTION, 0)) + 1
    copy = message.copy(options={DEFERRALS_OPTION: deferrals})
    copy.options.pop("eta", None)
    broker.enqueue(copy, delay=max(int(delay_ms), 0) or None)
    logger.debug("Deferred %s by %d ms (%s).", message.message_id, delay_ms, reason)
    raise Deferred(reason)
