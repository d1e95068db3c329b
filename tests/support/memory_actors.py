"""Test-only actors for memory-based recycling: one grows the process, one takes a while.

Records are ``token:pid:retries`` (as in :mod:`tests.support.drain_actors`) so a test can see
which process ran a job, how often, and whether a retry was used.
"""

from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.middleware import CurrentMessage

from gabay.actors import broker, settings

QUEUE = "system"  # a known queue: `gabay workers --queue` accepts only those

#: What ``grow`` allocated; kept so that the process stays big until it is replaced.
_HELD: list[bytes] = []


def key(name: str) -> str:
    return settings.keys.test(name)


def _stamp(token: str) -> str:
    message = CurrentMessage.get_current_message()
    retries = message.options.get("retries", 0) if message is not None else -1
    return f"{token}:{os.getpid()}:{retries}"


@dramatiq.actor(queue_name=QUEUE, max_retries=3, min_backoff=200, max_backoff=400)
def grow(token: str, megabytes: int) -> None:
    """Allocate ``megabytes`` of resident memory (every page written) and keep it."""
    _HELD.append(b"\x01" * (megabytes * 1024 * 1024))
    broker.client.rpush(key("finished"), _stamp(token))


@dramatiq.actor(queue_name=QUEUE, max_retries=3, min_backoff=200, max_backoff=400)
def slow(token: str, seconds: float) -> None:
    """Record the start, sleep in short steps, record the end."""
    stamp = _stamp(token)
    broker.client.rpush(key("started"), stamp)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    broker.client.rpush(key("finished"), stamp)
