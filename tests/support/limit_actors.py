"""Test-only actors with concurrency caps and rate limits, on their own queue.

Every run records, in Redis lists, what the checks need: start and end times (``time.time()`` of
the worker; all test processes share one host clock), the start time the rate limiter recorded,
the retry count and how often the message was deferred.
"""

from __future__ import annotations

import json
import os
import time

import dramatiq
from dramatiq.middleware import CurrentMessage

from gabay.actors import broker, settings
from gabay.cluster.deferral import DEFERRALS_OPTION
from gabay.middleware.rate_limit import STARTED_OPTION

LIMITS_QUEUE = "gabay-limits"
RUNS_KEY = settings.keys.test("runs")


def _record(token: str, started: float, **extra: object) -> None:
    message = CurrentMessage.get_current_message()
    options = message.options if message is not None else {}
    run = {
        "token": token,
        "start": started,
        "end": time.time(),
        "pid": os.getpid(),
        "limiter_start_us": options.get(STARTED_OPTION),
        "retries": options.get("retries", 0),
        "deferrals": options.get(DEFERRALS_OPTION, 0),
        **extra,
    }
    broker.client.rpush(RUNS_KEY, json.dumps(run))


@dramatiq.actor(queue_name=LIMITS_QUEUE, max_concurrency=2, max_retries=3)
def capped_two(token: str, seconds: float) -> None:
    """At most two at once, cluster-wide; sleeps ``seconds``."""
    started = time.time()
    time.sleep(seconds)
    _record(token, started)


@dramatiq.actor(queue_name=LIMITS_QUEUE, max_concurrency=1, max_retries=3)
def capped_one(token: str, seconds: float) -> None:
    """A mutex across the cluster; sleeps ``seconds`` on its first delivery only (a message
    requeued after its worker was killed finishes at once)."""
    started = time.time()
    broker.client.rpush(settings.keys.test("cap-one-started"), f"{token}:{started}")
    if broker.client.set(settings.keys.test("slept", token), 1, nx=True):
        time.sleep(seconds)
    _record(token, started)


@dramatiq.actor(queue_name=LIMITS_QUEUE, rate_limit="5/2s", max_retries=3)
def rate_limited(token: str) -> None:
    """At most 5 starts in any 2-second window, cluster-wide."""
    _record(token, time.time())


@dramatiq.actor(queue_name=LIMITS_QUEUE, rate_limit="5/2s", max_concurrency=2, max_retries=3)
def rate_and_cap(token: str, seconds: float) -> None:
    """Both limits: 5 starts per 2 s, never more than 2 at once."""
    started = time.time()
    time.sleep(seconds)
    _record(token, started)


@dramatiq.actor(queue_name=LIMITS_QUEUE, max_retries=3)
def unlimited(token: str) -> None:
    """No limit option: must never touch the limiters' keys."""
    _record(token, time.time())


def _teacher(token: str, seconds: float = 0.0) -> str:
    """The tenant of a test message: the part of its token before the first dot."""
    return token.split(".", 1)[0]


@dramatiq.actor(queue_name=LIMITS_QUEUE, max_concurrency=1, max_retries=3, tenant_of=_teacher)
def fair_mutex(token: str, seconds: float) -> None:
    """A mutex across the cluster with fair share by the token's prefix; sleeps ``seconds``."""
    started = time.time()
    time.sleep(seconds)
    _record(token, started)


@dramatiq.actor(queue_name=LIMITS_QUEUE, max_retries=1, min_backoff=100, max_backoff=100)
def fails_first(token: str) -> None:
    """Fails on its first run (recorded with ``failed``), succeeds on the retry."""
    started = time.time()
    if broker.client.set(settings.keys.test("failed", token), 1, nx=True):
        _record(token, started, failed=True)
        raise RuntimeError(f"{token} fails on its first run")
    _record(token, started)
