"""Test-only actors for pause, draining and stats; each records what happened in Redis.

Records are ``token:pid:retries`` so a test can see which process ran a message and whether a
retry was used. Two queues, so that pausing one can be checked against the other.
"""

from __future__ import annotations

import os
import time
from typing import Any

import dramatiq
import redis
from dramatiq.middleware import CurrentMessage

from gabay.actors import broker, settings
from gabay.cluster.registry import WorkerInfo, WorkerRegistry
from gabay.errors import InvalidInput
from tests.support.polling import wait_for

QUEUE = "gabay-drain"
OTHER_QUEUE = "gabay-drain-other"


def key(name: str) -> str:
    return settings.keys.test(name)


def _stamp(token: str) -> str:
    message = CurrentMessage.get_current_message()
    retries = message.options.get("retries", 0) if message is not None else -1
    return f"{token}:{os.getpid()}:{retries}"


@dramatiq.actor(queue_name=QUEUE, max_retries=3, min_backoff=200, max_backoff=400)
def work(token: str, seconds: float = 0.0) -> None:
    """Record the start, sleep in short steps, record the end (also both, in order, in events)."""
    stamp = _stamp(token)
    broker.client.rpush(key("started"), stamp)
    broker.client.rpush(key("events"), f"start:{stamp}")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    broker.client.rpush(key("events"), f"finish:{stamp}")
    broker.client.rpush(key("finished"), stamp)


@dramatiq.actor(queue_name=OTHER_QUEUE, max_retries=3, min_backoff=200, max_backoff=400)
def other(token: str) -> None:
    broker.client.rpush(key("other"), _stamp(token))


@dramatiq.actor(queue_name=QUEUE, max_retries=3, throws=(InvalidInput,))
def reject(token: str) -> None:
    """Invalid input: a final failure without retries, dead-lettered with the reason."""
    raise InvalidInput(f"submission {token} has no answers")


@dramatiq.actor(queue_name=QUEUE, max_retries=1, min_backoff=100, max_backoff=200)
def flaky(token: str) -> None:
    """Always fails: one retry, then dead-lettered."""
    broker.client.rpush(key("flaky"), _stamp(token))
    raise RuntimeError(f"flaky {token} failed")


def start_registered(start_workers, client: redis.Redis, **options: object) -> tuple[Any, int, str]:
    """Start one worker process and wait until it registered: (its command, pid, worker id)."""
    options = {"processes": 1, "queues": (QUEUE,), "modules": (__name__,), **options}
    workers = start_workers(**options)
    registry = WorkerRegistry(client, settings)

    def registered() -> list[WorkerInfo]:
        pids = workers.child_pids()
        return [w for w in registry.workers() if w.pid in pids]

    info = wait_for(registered, timeout=30, message="the worker process to register")[0]
    return workers, info.pid, info.worker_id
