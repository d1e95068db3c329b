"""The probe actor: a round trip through a real worker, for smoke tests and ``gabay ping``."""

from __future__ import annotations

import os
import socket

import dramatiq

from gabay.actors.bound import bound_broker
from gabay.queues import SYSTEM as SYSTEM_QUEUE

PROBE_TTL_SECONDS = 300

broker = bound_broker()
settings = broker.settings


@dramatiq.actor(queue_name=SYSTEM_QUEUE, max_retries=3, min_backoff=500)
def probe(token: str) -> None:
    """Answer a probe by writing which worker process handled it under ``gabay:probe:<token>``."""
    answer = f"{socket.gethostname()}:{os.getpid()}"
    broker.client.set(settings.keys.probe(token), answer, ex=PROBE_TTL_SECONDS)
