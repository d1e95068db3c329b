"""Asking for an exam's analytics after a graded submission, debounced per exam.

300 submissions of one exam must not make 300 recomputations. The first request sets the exam's
pending key (``Keys.analytics_pending``, ``SET NX EX``) and enqueues ``analyse_exam(form_id)`` on
queue ``analytics`` with a delay of ``ANALYTICS_DEBOUNCE_SECONDS``; later requests find the key
and enqueue nothing. The actor deletes the key *before* it reads the grades, so a submission
stored after that read sets the key again and gets a run of its own: none is left out.

The key outlives the delay by :data:`PENDING_GRACE_SECONDS`, so that a backlog in the queue does
not let requests through early; if the message were ever lost, the key expires and the next
submission asks again. Analytics are only statistics: a Redis error here is logged (once per
outage) and swallowed, it never fails the feedback job whose email is already out.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Callable

import dramatiq
import redis

from gabay.queues import ANALYTICS
from gabay.settings import Settings

logger = logging.getLogger(__name__)

#: The analytics worker's actor (gabay.actors.analytics).
ANALYSE_ACTOR = "analyse_exam"
#: Seconds the pending key lives beyond the debounce delay.
PENDING_GRACE_SECONDS = 300

#: Puts a message on its queue after ``delay`` milliseconds (the broker's ``enqueue``).
Enqueue = Callable[..., object]


def current_broker_enqueue(message: dramatiq.Message, *, delay: int | None = None) -> object:
    """Dramatiq's current broker's ``enqueue`` (in a worker: gabay's broker)."""
    return dramatiq.get_broker().enqueue(message, delay=delay)


def analyse_message(form_id: str) -> dramatiq.Message:
    return dramatiq.Message(queue_name=ANALYTICS, actor_name=ANALYSE_ACTOR, args=(form_id,),
                            kwargs={}, options={})


class AnalyticsRequests:
    """Requests (debounced) recomputations of exam analytics on ``client``."""

    def __init__(self, client: redis.Redis, settings: Settings,
                 enqueue: Enqueue = current_broker_enqueue) -> None:
        self.client = client
        self.keys = settings.keys
        self.debounce = settings.analytics_debounce_seconds
        self.enqueue = enqueue
        self._failing = False
        self._lock = threading.Lock()

    @property
    def pending_ttl(self) -> int:
        """Seconds the pending key lives (``EX`` takes whole seconds)."""
        return math.ceil(self.debounce) + PENDING_GRACE_SECONDS

    def request(self, form_id: str) -> bool:
        """Ask for an analysis of ``form_id``; True when this call enqueued it. Never raises for Redis."""
        key = self.keys.analytics_pending(form_id)
        try:
            first = bool(self.client.set(key, "1", nx=True, ex=self.pending_ttl))
            if first:
                try:
                    self.enqueue(analyse_message(form_id), delay=int(self.debounce * 1000))
                except redis.RedisError:
                    self._forget(key)  # not enqueued: let the next submission ask again
                    raise
        except redis.RedisError as exc:
            self._failed(form_id, exc)
            return False
        self._failing = False
        return first

    def _forget(self, key: str) -> None:
        with contextlib.suppress(redis.RedisError):  # else the key expires by itself
            self.client.delete(key)

    def _failed(self, form_id: str, exc: redis.RedisError) -> None:
        with self._lock:
            first, self._failing = not self._failing, True
        if first:
            logger.warning("Exam analytics of %s not requested (Redis: %s); they are recomputed at "
                           "the exam's next graded submission", form_id, type(exc).__name__)
