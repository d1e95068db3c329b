"""Fixtures of the fault tests: a Redis of the test's own and worker processes on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gabay.settings import Settings
from tests.chaos.cluster import Cluster
from tests.chaos.redis_server import RedisServer


@pytest.fixture
def chaos_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server on a free port with an append-only file: restarts keep its data."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def cluster(chaos_redis: RedisServer, settings: Settings, tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(chaos_redis, settings, tmp_path)
    yield cluster
    cluster.close()
