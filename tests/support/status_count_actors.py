"""Test-only actors on the form-response queue whose messages wait for different reasons: a rate
limit (deferred to the due set), a retry's backoff, a concurrency cap (the waiting room)."""

from __future__ import annotations

import time

import dramatiq

from gabay.actors import broker, settings
from gabay.queues import FORM_RESPONSE

HOLD_AT_MOST = 60.0


def gate_key() -> str:
    return settings.keys.test("count-gate")


@dramatiq.actor(queue_name=FORM_RESPONSE, rate_limit="1/m", max_retries=0)
def count_rate_limited(token: str) -> None:
    """One start per minute: the rest of a burst is deferred by the rate limit."""
    broker.client.rpush(settings.keys.test("count-rate"), token)


@dramatiq.actor(queue_name=FORM_RESPONSE, max_concurrency=1, max_retries=0)
def count_capped(token: str) -> None:
    """One at a time, cluster-wide, until the gate opens: the others wait in the waiting room."""
    broker.client.rpush(settings.keys.test("count-capped"), token)
    deadline = time.monotonic() + HOLD_AT_MOST
    while not broker.client.exists(gate_key()) and time.monotonic() < deadline:
        time.sleep(0.05)


@dramatiq.actor(queue_name=FORM_RESPONSE, max_retries=3, min_backoff=600_000, max_backoff=600_000)
def count_retrying(token: str) -> None:
    """Fails; its retry waits ten minutes in the due set."""
    broker.client.rpush(settings.keys.test("count-failed"), token)
    raise RuntimeError(f"planned failure {token}")


@dramatiq.actor(queue_name=FORM_RESPONSE, max_retries=0)
def count_plain(token: str) -> None:
    """Sent with a delay: waits in the due set as 'scheduled'."""
