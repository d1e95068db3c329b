"""Test-only actors on gabay's real queues, for checking the cluster status against known work.

Each records what happened under ``gabay:test:*`` so that the test process can check it.
``hold`` keeps its worker thread busy until the test opens the gate, so "running" can be seen.
"""

from __future__ import annotations

import os
import time

import dramatiq

from gabay.actors import broker, settings
from gabay.queues import FORM_RESPONSE, GENERATION, RETRIEVAL

HOLD_AT_MOST = 120.0


def gate_key() -> str:
    return settings.keys.test("gate")


def record_key(name: str) -> str:
    return settings.keys.test(name)


@dramatiq.actor(queue_name=GENERATION, max_retries=0)
def manager_succeed(token: str) -> None:
    """Complete at once, recording the token and pid."""
    broker.client.rpush(record_key("succeeded"), f"{token}:{os.getpid()}")


@dramatiq.actor(queue_name=GENERATION, max_retries=0)
def manager_fail(token: str) -> None:
    """Fail for good (no retries): dead-lettered and counted as failed."""
    raise RuntimeError(f"planned failure {token}")


@dramatiq.actor(queue_name=RETRIEVAL, max_retries=0)
def manager_hold(token: str) -> None:
    """Record the start, then keep this worker thread busy until the gate opens."""
    client = broker.client
    client.rpush(record_key("held"), f"{token}:{os.getpid()}")
    deadline = time.monotonic() + HOLD_AT_MOST
    while not client.exists(gate_key()) and time.monotonic() < deadline:
        time.sleep(0.05)
    client.rpush(record_key("released"), token)


@dramatiq.actor(queue_name=FORM_RESPONSE, max_retries=0)
def manager_feedback(token: str) -> None:
    """A form-response job that completes at once."""
    broker.client.rpush(record_key("feedback"), f"{token}:{os.getpid()}")
