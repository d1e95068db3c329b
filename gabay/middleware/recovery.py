"""Bounded recovery: a killed worker's messages, and this process's own kept put-backs.

Dramatiq's consumers heartbeat only while they poll; a process whose prefetch is full stops
polling its queue. This middleware keeps one thread per worker process that, every second:

- puts back the deliveries that Redis refused to take back earlier (see
  :meth:`gabay.cluster.intake.Intake.put_back_or_keep`);
- for every queue the process consumes, heartbeats and runs the dead-worker maintenance pass
  (see ``GabayBroker.run_maintenance``).

While Redis fails it logs once, not every second, and once more when Redis answers again. After
such an outage no worker could heartbeat, so every one of them looks dead for a moment: the pass
then only heartbeats, and judges other workers again ``grace`` seconds (``HEARTBEAT_TIMEOUT``)
after Redis answered, when every live worker has heartbeated since.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from dramatiq import Broker, Middleware, Worker

from gabay.cluster.intake import Intake
from gabay.cluster.outage import Outage
from gabay.cluster.periodic import Periodic

logger = logging.getLogger(__name__)


class Recovery(Middleware):
    """Heartbeat and requeue dead workers' messages once per ``interval`` seconds."""

    def __init__(self, run_maintenance: Callable[[str, bool], None], intake: Intake, grace: float,
                 interval: float = 1.0) -> None:
        self.run_maintenance = run_maintenance
        self.intake = intake
        self.grace = grace
        self.interval = interval
        self.outage = Outage(logger, "Recovery pass")
        self._answered_again_at: float | None = None
        self._queues: list[str] = []
        self._passes: Periodic | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._queues = sorted(worker.consumers)
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
        """One pass: kept put-backs first, then every consumed queue."""
        since = self._answered_again_at
        judge = not self.outage.failing and (since is None or time.monotonic() - since >= self.grace)
        try:
            self.intake.retry_kept()
            for queue_name in self._queues:
                self.run_maintenance(queue_name, judge)
        except redis.RedisError as exc:
            self.outage.failed(exc)
            self._answered_again_at = None
            return
        if self.outage.worked():
            logger.info("Judging other workers again in %g s.", self.grace)
            self._answered_again_at = time.monotonic()
        elif judge:
            self._answered_again_at = None
