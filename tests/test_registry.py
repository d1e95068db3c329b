"""The worker registry: every live worker process, across commands, without the dead ones."""

from __future__ import annotations

import socket
import time

import pytest
import redis

import gabay
from gabay.cluster.registry import WorkerRegistry
from gabay.settings import Settings
from tests.support.drain_actors import QUEUE, start_registered
from tests.support.polling import wait_for

pytestmark = pytest.mark.slow


def test_registry_lists_live_processes_and_drops_killed_and_stopped_ones(
    start_workers, redis_client: redis.Redis, settings: Settings
) -> None:
    registry = WorkerRegistry(redis_client, settings)
    doomed, doomed_pid, doomed_id = start_registered(start_workers, redis_client, threads=2)
    stopping, stopping_pid, stopping_id = start_registered(start_workers, redis_client, threads=3)

    workers = {w.worker_id: w for w in registry.workers()}
    assert set(workers) == {doomed_id, stopping_id}
    assert {w.pid for w in workers.values()} == {doomed_pid, stopping_pid}
    assert workers[doomed_id].threads == 2 and workers[stopping_id].threads == 3
    for info in workers.values():
        assert info.host == socket.gethostname()
        assert info.queues == [QUEUE]
        assert info.version == gabay.__version__
        assert info.started_at <= info.last_seen <= time.time() + 1
        assert not info.draining

    doomed.kill()
    killed = time.monotonic()
    wait_for(lambda: [w.worker_id for w in registry.workers()] == [stopping_id], timeout=20,
             message="the killed process to drop out")
    # Documented bound: HEARTBEAT_TIMEOUT (plus slack for a loaded machine).
    assert time.monotonic() - killed < settings.heartbeat_timeout + 3

    assert stopping.stop(timeout=60) == 0
    assert registry.workers() == []  # removed on shutdown, not by expiry
    assert redis_client.exists(settings.keys.worker(stopping_id)) == 0
