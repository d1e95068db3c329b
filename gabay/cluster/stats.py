"""Cluster-wide job counters in Redis: written by every worker process, read by the status API.

Keys (under the gabay prefix):

- ``stats:<queue>`` hash: ``completed``, ``failed`` (final failures, dead-lettered), ``deferred``
  (held back by a limit and re-enqueued), ``requeued`` (put back by a pause or a drain).
- ``stats:<queue>:minute:<epoch>`` hash: ``completed``, ``failed`` in that minute; expires after
  two hours.
- ``stats:failures`` list: the most recent final failures as JSON, newest first.
- ``running:<worker id>`` hash: the jobs that process is running, one field per message; the key
  expires unless its process refreshes it, so a killed process's entries vanish by themselves.
  ``running`` is a sorted set of worker ids by last refresh, so readers need no SCAN.
- ``published:<worker id>``: the number of that process's last publication (for its retries).
- ``jobs:finished`` hash: ``<kind>:succeeded`` and ``<kind>:failed``, whole jobs (a question job
  is several stage messages), counted by the job store once per transition.

Each worker process writes all of these from one thread, every ``FLUSH_EVERY`` seconds, in one
transaction (see :mod:`gabay.cluster.stats_buffer`): readers see figures at most that old.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import redis
from pydantic import BaseModel

from gabay.cluster import histograms
from gabay.keys import Keys
from gabay.settings import Settings

MINUTE_TTL = 2 * 3600
FAILURES_KEPT = 200
REASON_MAX = 500
#: How many ready messages at the head of a queue are read to find its oldest.
OLDEST_SAMPLE = 20
#: How long a worker's last publication number is kept (a retry checks it).
PUBLISHED_TTL = 24 * 3600


class QueueCounters(BaseModel):
    completed: int = 0
    failed: int = 0
    running: int = 0
    deferred: int = 0
    requeued: int = 0


class Failure(BaseModel):
    queue: str
    actor: str
    message_id: str
    reason: str
    at: float


class RunningJob(BaseModel):
    queue: str
    actor: str
    message_id: str
    started_at: float
    worker_id: str = ""


def minute_of(timestamp: float) -> int:
    """The epoch second at which the minute of ``timestamp`` starts."""
    return int(timestamp // 60) * 60


#: The final states of a job counted in ``jobs:finished``.
FINISHED = ("succeeded", "failed")


def count_finished(pipe: redis.client.Pipeline, keys: Keys, kind: str, status: str) -> None:
    """Count one job of ``kind`` reaching ``status`` (in the caller's transaction)."""
    pipe.hincrby(keys.finished_jobs, f"{kind}:{status}", 1)


@dataclass
class Batch:
    """What one publication writes."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (queue, field)
    minutes: Counter[tuple[str, int, str]] = field(default_factory=Counter)  # (queue, minute, field)
    failures: list[str] = field(default_factory=list)  # JSON, oldest first
    running: dict[str, str] | None = None  # redis id -> JSON; None: unchanged, no rewrite
    seq: int = 0  # the publication's number, recorded with it so that a retry can check it
    #: (histogram name, field) -> increment (see gabay.cluster.histograms)
    histograms: defaultdict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))

    def merge_back(self, older: Batch) -> None:
        """Fold the counts of a publication that failed back into these (newer) pending ones."""
        self.counts.update(older.counts)
        self.minutes.update(older.minutes)
        for key, value in older.histograms.items():
            self.histograms[key] += value
        self.failures[:0] = older.failures


class QueueStats:
    """Reads the counters; every figure is cluster-wide."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.keys = settings.keys
        self.live_after = settings.heartbeat_timeout

    def counters(self, queue: str) -> QueueCounters:
        raw = self.client.hgetall(self.keys.counters(queue))
        values = {k.decode(): int(v) for k, v in raw.items()}
        running = sum(1 for job in self.running_jobs() if job.queue == queue)
        return QueueCounters(**values, running=running)

    def throughput(self, queue: str, minutes: int = 60) -> list[tuple[int, int, int]]:
        """(minute epoch, completed, failed) for the last ``minutes`` minutes, oldest first."""
        now = minute_of(time.time())
        starts = [now - 60 * i for i in range(minutes - 1, -1, -1)]
        with self.client.pipeline(transaction=False) as pipe:
            for start in starts:
                pipe.hmget(self.keys.minute_counters(queue, start), "completed", "failed")
            rows = pipe.execute()
        return [(start, int(c or 0), int(f or 0)) for start, (c, f) in zip(starts, rows, strict=True)]

    def finished_jobs(self, kind: str) -> tuple[int, int]:
        """Cluster-wide count of jobs of ``kind`` that succeeded and that failed (final)."""
        succeeded, failed = self.client.hmget(self.keys.finished_jobs,
                                              [f"{kind}:{status}" for status in FINISHED])
        return int(succeeded or 0), int(failed or 0)

    def raw_counters(self, queue: str) -> dict[str, int]:
        """Every counter of ``queue`` as stored (``completed``, ``retried``, ``cancelled``, ...)."""
        return {k.decode(): int(v) for k, v in self.client.hgetall(self.keys.counters(queue)).items()}

    def histogram(self, name: str) -> list[histograms.Series]:
        """The cluster-wide histogram ``name`` (see gabay.cluster.histograms)."""
        return histograms.read(self.client, self.keys, name)

    def oldest_waiting(self, queues: list[str]) -> dict[str, float]:
        """Seconds since the oldest ready message of each queue was sent (0 when none waits).

        Among the first ``OLDEST_SAMPLE`` ready messages (an urgent message is put at the head).
        """
        with self.client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.lrange(self.keys.queue(queue), 0, OLDEST_SAMPLE - 1)
            heads = pipe.execute()
        with self.client.pipeline(transaction=False) as pipe:
            for queue, ids in zip(queues, heads, strict=True):
                pipe.hmget(self.keys.messages(queue), ids or [b""])
            bodies = pipe.execute()
        now = time.time()
        ages = {}
        for queue, found in zip(queues, bodies, strict=True):
            stamps = [json.loads(body).get("message_timestamp", now * 1000) for body in found if body]
            ages[queue] = max(0.0, now - min(stamps) / 1000) if stamps else 0.0
        return ages

    def recent_failures(self, limit: int = 20) -> list[Failure]:
        raw = self.client.lrange(self.keys.failures, 0, max(limit, 1) - 1)
        return [Failure.model_validate_json(item) for item in raw]

    def running_jobs(self) -> list[RunningJob]:
        """The jobs running now in live processes (a killed process's jobs drop out by TTL)."""
        cutoff_ms = int((time.time() - self.live_after) * 1000)
        self.client.zremrangebyscore(self.keys.running_index, "-inf", cutoff_ms)
        worker_ids = [w.decode() for w in self.client.zrange(self.keys.running_index, 0, -1)]
        with self.client.pipeline(transaction=False) as pipe:
            for worker_id in worker_ids:
                pipe.hvals(self.keys.running(worker_id))
            per_worker = pipe.execute()
        jobs = []
        for worker_id, values in zip(worker_ids, per_worker, strict=True):
            for value in values:
                jobs.append(RunningJob(**json.loads(value), worker_id=worker_id))
        return jobs


class StatsWriter:
    """Writes what a worker process buffered (:mod:`gabay.cluster.stats_buffer`), as a Batch."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.keys = settings.keys

    def publish(self, worker_id: str, batch: Batch, ttl_ms: int) -> None:
        """One MULTI/EXEC: counter increments, failures and (if given) the whole running hash."""
        with self.client.pipeline(transaction=True) as pipe:
            for (queue, name), n in batch.counts.items():
                pipe.hincrby(self.keys.counters(queue), name, n)
            for (queue, minute, name), n in batch.minutes.items():
                key = self.keys.minute_counters(queue, minute)
                pipe.hincrby(key, name, n)
                pipe.expire(key, MINUTE_TTL)
            for (histogram, part), amount in batch.histograms.items():
                if part.endswith(histograms.SEP + "sum"):
                    pipe.hincrbyfloat(self.keys.histograms(histogram), part, amount)
                else:
                    pipe.hincrby(self.keys.histograms(histogram), part, int(amount))
            if batch.failures:
                pipe.lpush(self.keys.failures, *batch.failures)
                pipe.ltrim(self.keys.failures, 0, FAILURES_KEPT - 1)
            if batch.running is not None:
                key = self.keys.running(worker_id)
                pipe.delete(key)
                if batch.running:
                    pipe.hset(key, mapping=batch.running)
                    pipe.pexpire(key, ttl_ms)
                pipe.zadd(self.keys.running_index, {worker_id: int(time.time() * 1000)})
            pipe.set(self.keys.published(worker_id), batch.seq, ex=PUBLISHED_TTL)
            pipe.execute()

    def published_seq(self, worker_id: str) -> int:
        return int(self.client.get(self.keys.published(worker_id)) or 0)

    def gone(self, worker_id: str) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            pipe.delete(self.keys.running(worker_id), self.keys.published(worker_id))
            pipe.zrem(self.keys.running_index, worker_id)
            pipe.execute()
