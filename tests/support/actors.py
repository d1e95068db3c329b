"""Actors used only by tests; imported by test worker processes next to ``gabay.actors``.

Each records what happened in Redis so that the test process can check it.
"""

from __future__ import annotations

import os
import time

import dramatiq

from gabay.actors import broker, settings

TEST_QUEUE = "gabay-tests"


@dramatiq.actor(queue_name=TEST_QUEUE, max_retries=0)
def record(token: str) -> None:
    """Push ``token`` and the handling pid to ``gabay:test:record``."""
    broker.client.rpush(settings.keys.test("record"), f"{token}:{os.getpid()}")


@dramatiq.actor(queue_name=TEST_QUEUE, max_retries=0)
def sleep_then_record(token: str, seconds: float) -> None:
    """Record the start, sleep, record the end (start/end times for overlap checks)."""
    client = broker.client
    client.rpush(settings.keys.test("started"), f"{token}:{time.time()}:{os.getpid()}")
    time.sleep(seconds)
    client.rpush(settings.keys.test("finished"), f"{token}:{time.time()}:{os.getpid()}")
