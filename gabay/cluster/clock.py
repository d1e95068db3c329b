"""The Redis server's clock, read without a round trip each time: one clock for the whole cluster.

Heartbeats and the dead-worker judgement must not depend on each host's clock: a host whose clock
runs 16 s ahead would otherwise find every other worker's heartbeat 16 s old and requeue the
messages they are running. :class:`RedisClock` reads ``TIME`` once, then advances by this host's
monotonic clock (which a wall-clock step does not move), and reads ``TIME`` again every
``resync`` seconds. Its error is about half a round trip to Redis, plus the drift of the monotonic
clock over ``resync`` (microseconds).
"""

from __future__ import annotations

import threading
import time

import redis


class RedisClock:
    """Milliseconds since the epoch on the Redis server's clock."""

    def __init__(self, client: redis.Redis, resync: float = 10.0) -> None:
        self.client = client
        self.resync = resync
        self._lock = threading.Lock()
        self._redis_ms = 0.0
        self._synced_at: float | None = None  # time.monotonic() that _redis_ms corresponds to

    def now_ms(self) -> int:
        """Now, in Redis milliseconds; reads TIME when never read or ``resync`` has passed."""
        synced_at = self._synced_at
        if synced_at is None or time.monotonic() - synced_at > self.resync:
            try:
                self.sync()
            except redis.RedisError:
                if self._synced_at is None:
                    raise  # never read: there is no estimate to fall back on
        assert self._synced_at is not None
        return int(self._redis_ms + (time.monotonic() - self._synced_at) * 1000)

    def sync(self) -> None:
        """Read ``TIME``; the answer is taken to belong to the middle of the round trip."""
        with self._lock:
            before = time.monotonic()
            seconds, micros = self.client.time()
            after = time.monotonic()
            self._redis_ms = int(seconds) * 1000 + int(micros) / 1000
            self._synced_at = (before + after) / 2
