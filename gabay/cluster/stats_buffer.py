"""The counters and running jobs of one worker process, published to Redis from one thread.

Writing them per message cost three Redis round trips per job (count, running start, running
end): more than Dramatiq's own work for a short job. Instead the worker threads only touch
in-process dictionaries (a lock, no I/O), and a thread publishes everything every
``FLUSH_EVERY`` seconds in one MULTI/EXEC transaction, and once more when the worker stops:

- counter increments and per-minute increments (by the minute in which the event happened) are
  added with HINCRBY, so several processes still sum to exact cluster-wide figures;
- final failures are pushed to the recent-failures list;
- the process's running hash is rewritten whole (DEL + HSET, at most one entry per worker thread)
  whenever it changed, and its TTL refreshed at least every third of ``HEARTBEAT_TIMEOUT``.

Bounds: the published figures lag the work by at most ``FLUSH_EVERY`` (plus one round trip); a job
shorter than that may never appear as running. A process killed outright (SIGKILL, OOM) loses the
counts of at most its last ``FLUSH_EVERY`` seconds, never counts anything twice, and its running
entries still expire after ``HEARTBEAT_TIMEOUT``. A failed publication (Redis unreachable) keeps
its counts for the next one; each publication records its number in Redis in the same
transaction, so a retry never applies a batch that had in fact been applied.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import redis

from gabay.cluster import histograms
from gabay.cluster.stats import Batch, Failure, StatsWriter, minute_of

logger = logging.getLogger(__name__)

#: How often the buffered counts and the running jobs are published (seconds).
FLUSH_EVERY = 0.25
#: The fields of a running job's JSON (a :class:`~gabay.cluster.stats.RunningJob`).
JOB_FIELDS = ("queue", "actor", "message_id", "started_at")


class StatsBuffer:
    """Thread-safe accumulation for one process; one publishing thread while a worker runs."""

    def __init__(self, writer: StatsWriter, worker_id: str, ttl_ms: int,
                 interval: float = FLUSH_EVERY) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._pending = Batch()
        self._running: dict[str, tuple[str, str, str, float]] = {}  # redis id -> job fields
        self._version = 0  # bumped by every start and end
        self._published_version = 0
        self._refreshed_at = 0.0  # time.monotonic() of the last write of the running hash
        self._writer = writer
        self._worker_id = worker_id
        self._ttl_ms = ttl_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self._flushing = threading.Lock()  # one publication at a time (thread, stop, tests)
        self._seq = 0  # number of the last publication tried
        self._unconfirmed: Batch | None = None  # a failed publication Redis may have applied

    # -- wiring -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start publishing (idempotent: both stats middleware call it)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._refreshed_at = 0.0
        self._thread = threading.Thread(target=self._run, name="gabay-stats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, publish what is left and remove this process's running entries."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout=5)
        with self._lock:
            self._running.clear()
            self._version += 1
            self._published_version = self._version
        if not self.flush():
            logger.error("The last job counters of this process could not be published.")
        try:
            self._writer.gone(self._worker_id)
        except redis.RedisError as exc:
            logger.warning("Could not remove the running jobs (they expire by themselves): %s", exc)

    # -- events (worker threads) --------------------------------------------------------------------

    def count(self, queue: str, name: str) -> None:
        """Add one to counter ``name`` of ``queue``; completed and failed also per minute."""
        minute = minute_of(time.time())
        with self._lock:
            self._pending.counts[queue, name] += 1
            if name in ("completed", "failed"):
                self._pending.minutes[queue, minute, name] += 1

    def observe(self, histogram: str, labels: tuple[str, ...], value: float) -> None:
        """Add one observation to ``histogram`` (see gabay.cluster.histograms)."""
        bucket, total, count = histograms.fields(histogram, labels, value)
        with self._lock:
            self._pending.histograms[histogram, bucket] += 1
            self._pending.histograms[histogram, total] += value
            self._pending.histograms[histogram, count] += 1

    def fail(self, failure: Failure) -> None:
        """Count a final failure and keep its reason for the recent-failures list."""
        text = failure.model_dump_json()
        with self._lock:
            self._pending.counts[failure.queue, "failed"] += 1
            self._pending.minutes[failure.queue, minute_of(failure.at), "failed"] += 1
            self._pending.failures.append(text)

    def started(self, redis_id: str, queue: str, actor: str, message_id: str) -> None:
        job = (queue, actor, message_id, time.time())
        with self._lock:
            self._running[redis_id] = job
            self._version += 1

    def ended(self, redis_id: str) -> float | None:
        """Forget a running job; returns when it started (None when it was not running)."""
        with self._lock:
            job = self._running.pop(redis_id, None)
            if job is not None:
                self._version += 1
        return job[3] if job is not None else None

    # -- publishing ---------------------------------------------------------------------------------

    def flush(self) -> bool:
        """Publish the pending counts, and the running jobs if they changed or their TTL is due.

        Returns False when Redis could not be reached (the counts stay pending).
        """
        with self._flushing:
            if self._unconfirmed is not None and not self._settle(self._writer):
                return False
            return self._publish(self._writer)

    def _publish(self, writer: StatsWriter) -> bool:
        refresh_due = self._thread is not None and \
            time.monotonic() - self._refreshed_at >= self._ttl_ms / 3000
        jobs: list[tuple[str, tuple[str, str, str, float]]] | None = None
        with self._lock:
            batch, self._pending = self._pending, Batch()
            version = self._version
            if version != self._published_version or refresh_due:
                jobs = list(self._running.items())
        if jobs is not None:
            batch.running = {rid: json.dumps(dict(zip(JOB_FIELDS, job, strict=True)))
                             for rid, job in jobs}
        if not (batch.counts or batch.failures or batch.histograms or batch.running is not None):
            return True
        self._seq += 1
        batch.seq = self._seq
        try:
            writer.publish(self._worker_id, batch, self._ttl_ms)
        except redis.RedisError as exc:
            self._unconfirmed = batch  # applied or not: the next flush asks Redis
            if not self._failing:
                logger.warning("Could not publish the job counters (kept for the next try): %s", exc)
            self._failing = True
            return False
        self._failing = False
        if jobs is not None:
            self._refreshed_at = time.monotonic()
            with self._lock:
                self._published_version = max(self._published_version, version)
        return True

    def _settle(self, writer: StatsWriter) -> bool:
        """After a failed publication: drop its batch if Redis applied it, else publish it again.

        (A connection lost after EXEC but before its reply must not count the batch twice.)
        """
        batch = self._unconfirmed
        assert batch is not None
        try:
            applied = writer.published_seq(self._worker_id) == batch.seq
        except redis.RedisError:
            return False
        self._unconfirmed = None
        if not applied:
            with self._lock:
                self._pending.merge_back(batch)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # the thread must survive anything; a bug is logged, not fatal
                logger.exception("Publishing the job counters failed.")
