"""Worker registry: which worker processes are alive, where, with which queues and threads.

Each worker process keeps ``gabay:workers:<worker id>`` (JSON, TTL = ``HEARTBEAT_TIMEOUT``) and its
score in the sorted set ``gabay:workers`` fresh from a thread; it deletes both on shutdown. A process
killed outright drops out within ``HEARTBEAT_TIMEOUT`` seconds. The worker id is the broker id
Dramatiq uses for the process's heartbeat and acks sets.
"""

from __future__ import annotations

import logging
import os
import socket
import time

import redis
from dramatiq import Broker, Middleware, Worker
from pydantic import BaseModel

import gabay
from gabay.cluster.periodic import Periodic
from gabay.settings import Settings

logger = logging.getLogger(__name__)


class WorkerInfo(BaseModel):
    worker_id: str
    host: str
    pid: int
    queues: list[str]
    threads: int
    version: str
    started_at: float
    last_seen: float
    draining: bool = False


class RegistryKeys:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.index = settings.keys.workers_index

    def worker(self, worker_id: str) -> str:
        return self.settings.keys.worker(worker_id)


class WorkerRegistry:
    """Reads the registry."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.keys = RegistryKeys(settings)
        self.ttl = settings.heartbeat_timeout

    def workers(self) -> list[WorkerInfo]:
        """The live worker processes, oldest first."""
        cutoff_ms = int((time.time() - self.ttl) * 1000)
        self.client.zremrangebyscore(self.keys.index, "-inf", cutoff_ms)
        ids = [w.decode() for w in self.client.zrange(self.keys.index, 0, -1)]
        if not ids:
            return []
        raw = self.client.mget([self.keys.worker(i) for i in ids])
        infos = [WorkerInfo.model_validate_json(r) for r in raw if r]
        return sorted(infos, key=lambda info: (info.started_at, info.worker_id))


class WorkerRegistration(Middleware):
    """Registers this worker process at boot, refreshes it while alive, removes it on shutdown."""

    def __init__(self) -> None:
        self._refresher: Periodic | None = None
        self._info: WorkerInfo | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        settings = getattr(broker, "settings", None)
        if not isinstance(settings, Settings):
            return
        client: redis.Redis = broker.client  # type: ignore[attr-defined]
        now = time.time()
        self._info = WorkerInfo(
            worker_id=broker.broker_id,  # type: ignore[attr-defined]
            host=socket.gethostname(), pid=os.getpid(),
            queues=sorted(q for q in worker.consumers if not q.endswith(".DQ")),
            threads=worker.worker_threads, version=gabay.__version__,
            started_at=now, last_seen=now,
        )
        keys, ttl = RegistryKeys(settings), settings.heartbeat_timeout
        self._write(client, keys, ttl, broker)
        self._refresher = Periodic("gabay-registry", max(ttl / 3, 0.2),
                                   lambda: self._write(client, keys, ttl, broker))
        self._refresher.start()
        logger.info("Registered worker %s (pid %d, %d threads, queues %s)", self._info.worker_id,
                    self._info.pid, self._info.threads, ", ".join(self._info.queues))

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._refresher is not None:
            self._refresher.stop()
        settings = getattr(broker, "settings", None)
        if self._info is None or not isinstance(settings, Settings):
            return
        keys = RegistryKeys(settings)
        try:
            with broker.client.pipeline(transaction=False) as pipe:  # type: ignore[attr-defined]
                pipe.delete(keys.worker(self._info.worker_id))
                pipe.zrem(keys.index, self._info.worker_id)
                pipe.execute()
        except redis.RedisError as exc:
            logger.warning("Could not unregister this worker (it expires by itself): %s", exc)

    def _write(self, client: redis.Redis, keys: RegistryKeys, ttl: float, broker: Broker) -> None:
        assert self._info is not None
        intake = getattr(broker, "intake", None)
        self._info.last_seen = time.time()
        self._info.draining = bool(intake is not None and intake.draining.is_set())
        try:
            with client.pipeline(transaction=False) as pipe:
                pipe.set(keys.worker(self._info.worker_id), self._info.model_dump_json(),
                         px=int(ttl * 1000))
                pipe.zadd(keys.index, {self._info.worker_id: int(self._info.last_seen * 1000)})
                pipe.execute()
        except redis.RedisError as exc:
            logger.warning("Could not refresh the worker registry: %s", exc)
