"""An actor for the autoscaling test: on a queue ``gabay workers -Q`` accepts, counting completions."""

from __future__ import annotations

import os
import time

import dramatiq

from gabay.actors import broker, settings
from gabay.queues import SYSTEM


@dramatiq.actor(queue_name=SYSTEM, max_retries=0)
def autoscale_work(token: str, seconds: float) -> None:
    """Sleep, then push ``token:pid`` to ``gabay:test:autoscale-done``."""
    time.sleep(seconds)
    broker.client.rpush(settings.keys.test("autoscale-done"), f"{token}:{os.getpid()}")
