"""Each actor's runs per minute, cluster-wide: what the ``failure_rate`` rule counts.

A run is an attempt that started and ended: it succeeded, or it raised (a retried attempt counts as
a failed run, since each such attempt is work that failed). Messages held back by a gate, put
back by a drain or stopped because another process owns them never ran and are not counted.
Worker threads only add to an in-memory counter; the alert thread publishes it every evaluation
(HINCRBY into ``alerts:runs:<minute>``, kept for the window plus two minutes), so any number of
processes add up. A killed process loses at most its last interval's counts.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import redis

from gabay.cluster.stats import minute_of
from gabay.keys import Keys


class ActorRuns:
    """This process's pending counts, and the cluster-wide figures read back."""

    def __init__(self, client: redis.Redis, keys: Keys, window_s: float) -> None:
        self.client = client
        self.keys = keys
        self.window_s = window_s
        self.ttl = int(window_s) + 120
        self._lock = threading.Lock()
        self._pending: Counter[tuple[int, str]] = Counter()

    def record(self, actor: str, ok: bool, at: float | None = None) -> None:
        minute = minute_of(time.time() if at is None else at)
        with self._lock:
            self._pending[(minute, f"{actor}:{'ok' if ok else 'failed'}")] += 1

    def publish(self) -> None:
        """Add the pending counts to Redis; on failure they stay pending (raises RedisError)."""
        with self._lock:
            batch, self._pending = self._pending, Counter()
        if not batch:
            return
        try:
            with self.client.pipeline(transaction=True) as pipe:
                for (minute, field), n in batch.items():
                    pipe.hincrby(self.keys.actor_runs(minute), field, n)
                    pipe.expire(self.keys.actor_runs(minute), self.ttl)
                pipe.execute()
        except redis.RedisError:
            with self._lock:
                self._pending.update(batch)
            raise

    def totals(self, now: float) -> dict[str, tuple[int, int]]:
        """actor -> (ok, failed) over the minutes of the window ending at ``now``."""
        last = minute_of(now)
        minutes = [last - 60 * i for i in range(max(int(self.window_s // 60), 1))]
        with self.client.pipeline(transaction=False) as pipe:
            for minute in minutes:
                pipe.hgetall(self.keys.actor_runs(minute))
            rows = pipe.execute()
        totals: dict[str, list[int]] = {}
        for row in rows:
            for field, value in row.items():
                actor, _, outcome = field.decode().rpartition(":")
                pair = totals.setdefault(actor, [0, 0])
                pair[0 if outcome == "ok" else 1] += int(value)
        return {actor: (ok, failed) for actor, (ok, failed) in totals.items()}
