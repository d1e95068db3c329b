"""DueMessages: each worker process moves due messages of the queues it consumes to their queue.

One thread per process runs the promotion script of :mod:`gabay.cluster.due` for all its queues
at once, then sleeps until the next message is due (at most ``MAX_IDLE`` seconds, since another
process may have scheduled one sooner). A message this process schedules sooner than that wakes
the thread at once, so a retry's backoff ends on time, to a few milliseconds. Every live process
promotes: a message waits for no particular one. While Redis fails nothing is moved (nothing is
lost either: the ids stay in the due set) and the failure is logged once.
"""

from __future__ import annotations

import logging
import threading

import redis
from dramatiq import Broker, Middleware, Worker

from gabay.cluster.due import DueSet
from gabay.cluster.outage import Outage
from gabay.keys import DEAD_SUFFIX, DELAY_SUFFIX

logger = logging.getLogger(__name__)

#: Longest sleep between two promotions, in seconds.
MAX_IDLE = 1.0
#: Pause after a failed promotion, in seconds.
RETRY_AFTER = 0.5


class DueMessages(Middleware):
    """Promote due messages for this process's queues (see the module docstring)."""

    def __init__(self, due: DueSet) -> None:
        self.due = due
        self.outage = Outage(logger, "Moving due messages to their queues")
        self._queues: list[str] = []
        self._allowed: set[str] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._allowed = worker.consumer_whitelist or None
        self._queues = sorted(q for q in broker.get_declared_queues() if self._consumes(q))
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gabay-due", daemon=True)
        self._thread.start()

    def after_declare_queue(self, broker: Broker, queue_name: str) -> None:
        if self._thread is not None and self._consumes(queue_name):
            self._queues = sorted({*self._queues, queue_name})
            self.due.sooner.set()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._stop.set()
        self.due.sooner.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _consumes(self, queue_name: str) -> bool:
        if queue_name.endswith((DELAY_SUFFIX, DEAD_SUFFIX)):
            return False
        return self._allowed is None or queue_name in self._allowed

    def _run(self) -> None:
        while not self._stop.is_set():
            self.due.sooner.clear()  # before the pass: a schedule during it wakes the next wait
            try:
                promotion = self.due.promote(self._queues)
            except redis.RedisError as exc:
                self.outage.failed(exc)
                self._stop.wait(RETRY_AFTER)
                continue
            self.outage.worked()
            if promotion.full:
                continue
            self.due.known_next = promotion.next_due
            wait = MAX_IDLE
            if promotion.next_due is not None:
                wait = min(max(promotion.next_due - promotion.now, 0) / 1000, MAX_IDLE)
            if wait > 0:
                self.due.sooner.wait(wait)
