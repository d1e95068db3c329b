"""The Redis clock: Redis TIME once, then this host's monotonic clock; a wall-clock step changes nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from gabay.cluster.clock import RedisClock
from tests.chaos.redis_server import RedisServer


def test_it_reads_the_redis_servers_time_and_advances_with_the_monotonic_clock(
        redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = RedisClock(redis_client, resync=3600)
    seconds, micros = redis_client.time()
    assert abs(clock.now_ms() - (seconds * 1000 + micros // 1000)) < 50

    monkeypatch.setattr(time, "time", lambda: 0.0)  # this host's wall clock jumps to 1970
    first = clock.now_ms()
    assert first > 1_700_000_000_000
    assert clock.now_ms() >= first


def test_a_clock_that_was_read_once_keeps_counting_while_redis_is_down(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=False).start()
    clock = RedisClock(server.client(), resync=0)  # tries TIME on every call
    before = clock.now_ms()
    server.stop()
    assert clock.now_ms() >= before  # the estimate, not an error

    never_read = RedisClock(redis.Redis(port=server.port, socket_connect_timeout=0.5))
    with pytest.raises(redis.ConnectionError):
        never_read.now_ms()  # no estimate to fall back on: heartbeats must not guess
