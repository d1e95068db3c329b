"""Bounded recovery: a killed worker's messages, and this process's own kept put-backs.

Dramatiq's consumers heartbeat only while they poll; a process whose prefetch is full stops
polling its queue. This middleware keeps one thread per worker process that, every second:

- puts back the deliveries that Redis refused to take back earlier (see
  :meth:`gabay.cluster.intake.Intake.put_back_or_keep`);
- heartbeats and, in the same Lua call, puts the unfinished messages of dead workers back in
  their queues, whichever queues those are (see :mod:`gabay.cluster.dead_workers`; this replaces
  Dramatiq's maintenance, which scans the whole keyspace).

At boot (before any consumer fetches) it registers the queues this process consumes, so that a
later pass of another process knows where this one's unacked messages are should it die.

While Redis fails it logs once, not every second, and once more when Redis answers again. After
such an outage no worker could heartbeat, so every one of them looks dead for a moment: the pass
then only heartbeats, and judges other workers again ``grace`` seconds (``HEARTBEAT_TIMEOUT``)
after Redis answered, when every live worker has heartbeated since.
"""

from __future__ import annotations

import logging
import time

import redis
from dramatiq import Broker, Middleware, Worker
from dramatiq.common import dq_name

from gabay.cluster.dead_workers import DeadWorkers
from gabay.cluster.intake import Intake
from gabay.cluster.outage import Outage
from gabay.cluster.periodic import Periodic

logger = logging.getLogger(__name__)


class Recovery(Middleware):
    """Heartbeat and requeue dead workers' messages once per ``interval`` seconds."""

    def __init__(self, dead_workers: DeadWorkers, intake: Intake, grace: float,
                 interval: float = 1.0) -> None:
        self.dead_workers = dead_workers
        self.intake = intake
        self.grace = grace
        self.interval = interval
        self.outage = Outage(logger, "Recovery pass")
        self._answered_again_at: float | None = None
        self._booted = False
        self._allowed: set[str] | None = None
        self._passes: Periodic | None = None

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        """Register the consumed queues (and heartbeat) before the first fetch can take a message."""
        allowed = worker.consumer_whitelist
        queues = [q for q in broker.get_declared_queues() if not allowed or q in allowed]
        self.dead_workers.register(self.intake.worker_id, queues)
        self.dead_workers.run_pass(self.intake.worker_id, judge=False)
        self._booted, self._allowed = True, allowed

    def after_declare_queue(self, broker: Broker, queue_name: str) -> None:
        """An actor declared after boot brings a new queue: register it too."""
        if self._booted and (not self._allowed or queue_name in self._allowed):
            self.dead_workers.register(self.intake.worker_id, [queue_name, dq_name(queue_name)])

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._passes = Periodic("gabay-recovery", self.interval, self.recover)
        self._passes.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._passes is not None:
            self._passes.stop()
        self.intake.retry_kept()
        if self.intake.kept:
            logger.error("%d message(s) could not be put back before exit; they come back after "
                         "HEARTBEAT_TIMEOUT (they are in this process's acks set).", self.intake.kept)

    def recover(self) -> None:
        """One pass: kept put-backs first, then the heartbeat and dead-worker recovery."""
        since = self._answered_again_at
        judge = not self.outage.failing and (since is None or time.monotonic() - since >= self.grace)
        try:
            self.intake.retry_kept()
            workers, messages = self.dead_workers.run_pass(self.intake.worker_id, judge)
        except redis.RedisError as exc:
            self.outage.failed(exc)
            self._answered_again_at = None
            return
        if self.outage.worked():
            logger.info("Judging other workers again in %g s.", self.grace)
            self._answered_again_at = time.monotonic()
        elif judge:
            self._answered_again_at = None
        if messages:
            logger.warning("Recovered %d dead worker process(es): %d unfinished message(s) back in "
                           "their queues.", workers, messages)
