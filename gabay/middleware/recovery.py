"""Bounded recovery of a killed worker's messages, and a heartbeat that never starves.

Dramatiq's consumers heartbeat only while they poll; a process whose prefetch is full stops
polling its queue. This middleware keeps one thread per worker process that, every second, for
every queue the process consumes, heartbeats and runs the dead-worker maintenance pass (see
``GabayBroker.run_maintenance``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from dramatiq import Broker, Middleware, Worker

from gabay.cluster.periodic import Periodic

logger = logging.getLogger(__name__)


class Recovery(Middleware):
    """Heartbeat and requeue dead workers' messages once per ``interval`` seconds."""

    def __init__(self, run_maintenance: Callable[[str], None], interval: float = 1.0) -> None:
        self.run_maintenance = run_maintenance
        self.interval = interval
        self._passes: Periodic | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        queues = sorted(worker.consumers)
        run_maintenance = self.run_maintenance

        def recover() -> None:
            for queue_name in queues:
                try:
                    run_maintenance(queue_name)
                except redis.RedisError as exc:
                    logger.warning("Recovery pass on %s failed: %s", queue_name, exc)

        self._passes = Periodic("gabay-recovery", self.interval, recover)
        self._passes.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._passes is not None:
            self._passes.stop()
