"""GabayConsumer: Dramatiq's Redis consumer that asks the Intake first and rides out Redis faults.

- Before every fetch it asks the process's :class:`~gabay.cluster.intake.Intake`: a paused queue
  or a draining process fetches nothing, and what it had prefetched goes back at once.
- The ack (or nack) of a delivery the Intake put back is skipped: it waits in its queue again.
- A fetch that Redis refuses or cannot answer fetched nothing: the consumer waits with a growing
  pause and tries again. (Dramatiq would restart the consumer, and on a connection error forget
  the delayed messages it holds in memory, which then stay in this process's acks set as long as
  the process lives.)
- An ack or nack that fails for any Redis error is raised as Dramatiq's ``ConnectionClosed``, on
  which Dramatiq retries it until it succeeds; an unacked id would run again one day.
- Its pauses (may not fetch, fetch backoff) end early on :meth:`GabayConsumer.wake`: the drain
  wakes a stopped consumer at once instead of letting the shutdown wait out ``IDLE_CHECK``.
- An idle consumer that holds no message, while its process hears the queues' wake-ups
  (:mod:`gabay.cluster.wakeups`), waits up to ``IDLE_FETCH_INTERVAL`` between fetches: a push to
  its empty queue wakes it at once. Otherwise (messages in flight, whose acks its thread posts
  between fetches, or the wake-ups unheard) it polls with Dramatiq's growing backoff (up to the
  worker's timeout, 1 s; 5 s for a delay queue, which only plain Dramatiq producers still use).
  Either wait ends at once when this process put a message at the head of its queue (a cap slot
  handed to a waiting message: :meth:`gabay.cluster.intake.Intake.nudge`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import redis
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import _RedisConsumer
from dramatiq.common import compute_backoff
from dramatiq.errors import ConnectionClosed
from dramatiq.errors import ConnectionError as DramatiqConnectionError

from gabay.cluster.intake import Intake
from gabay.cluster.outage import Outage
from gabay.keys import DELAY_SUFFIX

logger = logging.getLogger(__name__)

#: How long a consumer that may not fetch sleeps between checks, in seconds.
IDLE_CHECK = 0.2
#: Longest pause between fetches while Redis fails, in seconds.
MAX_FETCH_BACKOFF = 2.0
#: Longest idle poll of a Dramatiq delay queue (ms): gabay's own delayed messages wait in the due
#: set, so only a plain Dramatiq producer's delayed sends arrive there.
DELAY_QUEUE_IDLE_MS = 5000


class GabayConsumer(_RedisConsumer):
    """See the module docstring."""

    def __init__(self, broker: Any, queue_name: str, prefetch: int, timeout: int, *,
                 intake: Intake, idle_ms: int = 0) -> None:
        if queue_name.endswith(DELAY_SUFFIX):
            timeout = max(timeout, DELAY_QUEUE_IDLE_MS)
        super().__init__(broker, queue_name, prefetch, timeout)
        self.intake = intake
        self.idle_ms = idle_ms
        self.failed_fetches = 0
        self.outage = Outage(logger, f"Fetching from {queue_name}")
        self._woken = threading.Event()
        self._nudged = intake.nudge_event(queue_name)

    def __next__(self) -> Any:
        if not self.intake.may_fetch(self.queue_name):
            self._return_cache()
            self._woken.wait(IDLE_CHECK)
            return None
        try:
            message = self._fetch_next()
        except (redis.RedisError, DramatiqConnectionError) as exc:
            self._fetch_failed(exc)
            return None
        if self.outage.worked():
            self.failed_fetches = 0
        return message

    def _fetch_next(self) -> Any:
        """Dramatiq's ``__next__``, with a nudge-able idle wait instead of its sleep."""
        while self.message_cache:
            data = self.message_cache.pop(0)
            if data is None:
                continue
            self.misses = 0
            message = Message.decode(data)
            self.queued_message_ids.add(message.message_id)
            return MessageProxy(message)
        if self.outstanding_message_count < self.prefetch:
            self.message_cache = self.broker.do_fetch(
                self.queue_name, self.prefetch - self.outstanding_message_count)
            if self.message_cache:
                return self._fetch_next()
        self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
        if self.idle_ms and self.outstanding_message_count == 0 and self.intake.wakeups_live.is_set():
            backoff_ms = max(backoff_ms, self.idle_ms)
        if self._nudged.wait(backoff_ms / 1000) and not self._woken.is_set():
            self._nudged.clear()
            self.misses = 0
        return None

    def _fetch_failed(self, exc: Exception) -> None:
        self.failed_fetches += 1
        self.outage.failed(exc)
        self._woken.wait(min(IDLE_CHECK * 2 ** min(self.failed_fetches - 1, 4), MAX_FETCH_BACKOFF))

    def wake(self) -> None:
        """End the current pause and skip every later one: only for a consumer thread told to stop
        (it leaves its loop at the next return), so that the shutdown does not wait for it."""
        self._woken.set()
        self._nudged.set()

    def _return_cache(self) -> None:
        """Fetched but not yet handed to the worker: put back at once."""
        cached, self.message_cache = self.message_cache, []
        messages = [Message.decode(data) for data in cached if data is not None]
        try:
            self.intake.put_back(self.queue_name, messages, acked_later=False)
        except redis.RedisError as exc:
            self.message_cache = cached + self.message_cache
            logger.warning("Could not put back %d message(s) of %s: %s", len(messages), self.queue_name, exc)

    def forget(self, message: Any) -> None:
        """Drop a put-back delivery from the prefetch accounting without acking it."""
        self.queued_message_ids.discard(message.message_id)

    def ack(self, message: Any) -> None:
        self._post_process(message, super().ack)

    def nack(self, message: Any) -> None:
        self._post_process(message, super().nack)

    def _post_process(self, message: Any, acknowledge: Callable[[Any], None]) -> None:
        """Skip a put-back delivery; raise any Redis error as one Dramatiq retries."""
        if self.intake.forget(message):
            self.forget(message)
            return
        try:
            acknowledge(message)
        except redis.RedisError as exc:
            raise ConnectionClosed(exc) from None
