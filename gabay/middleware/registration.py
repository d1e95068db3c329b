"""WorkerRegistration: this worker process in the cluster's registry while it lives.

Registered at worker boot, refreshed every third of ``HEARTBEAT_TIMEOUT`` from a thread (with
whether the process is draining), removed at shutdown. A process killed outright drops out of
the registry by TTL (see :mod:`gabay.cluster.registry`).
"""

from __future__ import annotations

import logging
import os
import socket
import time

import redis
from dramatiq import Broker, Middleware, Worker

import gabay
from gabay.cluster.intake import Intake
from gabay.cluster.periodic import Periodic
from gabay.cluster.registry import WorkerInfo, WorkerRegistry
from gabay.keys import DELAY_SUFFIX

logger = logging.getLogger(__name__)


class WorkerRegistration(Middleware):
    """Keeps this process's registry entry fresh (see the module docstring)."""

    def __init__(self, registry: WorkerRegistry, intake: Intake) -> None:
        self.registry = registry
        self.intake = intake
        self._refresher: Periodic | None = None
        self._info: WorkerInfo | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        now = time.time()
        self._info = WorkerInfo(
            worker_id=self.intake.worker_id,
            host=socket.gethostname(), pid=os.getpid(),
            queues=sorted(q for q in worker.consumers if not q.endswith(DELAY_SUFFIX)),
            threads=worker.worker_threads, version=gabay.__version__,
            started_at=now, last_seen=now,
        )
        self._refresh()
        self._refresher = Periodic("gabay-registry", max(self.registry.ttl / 3, 0.2), self._refresh)
        self._refresher.start()
        logger.info("Registered worker %s (pid %d, %d threads, queues %s)", self._info.worker_id,
                    self._info.pid, self._info.threads, ", ".join(self._info.queues))

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._refresher is not None:
            self._refresher.stop()
        if self._info is None:
            return
        try:
            self.registry.remove(self._info.worker_id)
        except redis.RedisError as exc:
            logger.warning("Could not unregister this worker (it expires by itself): %s", exc)

    def _refresh(self) -> None:
        assert self._info is not None
        self._info.last_seen = time.time()
        self._info.draining = self.intake.draining.is_set()
        try:
            self.registry.publish(self._info)
        except redis.RedisError as exc:
            logger.warning("Could not refresh the worker registry: %s", exc)
