"""Worker registry: which worker processes are alive, where, with which queues and threads.

Each worker process keeps ``<prefix>workers:<worker id>`` (JSON, TTL = ``HEARTBEAT_TIMEOUT``) and
its score in the sorted set ``<prefix>workers`` fresh (see
:class:`gabay.middleware.registration.WorkerRegistration`) and deletes both on shutdown. A process
killed outright drops out within ``HEARTBEAT_TIMEOUT`` seconds. The worker id is the broker id
Dramatiq uses for the process's heartbeat and acks sets.
"""

from __future__ import annotations

import time

import redis
from pydantic import BaseModel

from gabay.settings import Settings


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


class WorkerRegistry:
    """Reads and writes the registry entries."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.keys = settings.keys
        self.ttl = settings.heartbeat_timeout

    def workers(self) -> list[WorkerInfo]:
        """The live worker processes, oldest first."""
        cutoff_ms = int((time.time() - self.ttl) * 1000)
        self.client.zremrangebyscore(self.keys.workers_index, "-inf", cutoff_ms)
        ids = [w.decode() for w in self.client.zrange(self.keys.workers_index, 0, -1)]
        if not ids:
            return []
        raw = self.client.mget([self.keys.worker(i) for i in ids])
        infos = [WorkerInfo.model_validate_json(r) for r in raw if r]
        return sorted(infos, key=lambda info: (info.started_at, info.worker_id))

    def publish(self, info: WorkerInfo) -> None:
        """Write (or refresh) one process's entry; it expires after the heartbeat timeout."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.worker(info.worker_id), info.model_dump_json(), px=int(self.ttl * 1000))
            pipe.zadd(self.keys.workers_index, {info.worker_id: int(info.last_seen * 1000)})
            pipe.execute()

    def remove(self, worker_id: str) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            pipe.delete(self.keys.worker(worker_id))
            pipe.zrem(self.keys.workers_index, worker_id)
            pipe.execute()
