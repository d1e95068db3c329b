"""Actors of the fault tests. Each run is written to a file, not to Redis: Redis is what fails.

Every process appends JSON lines to ``<GABAY_CHAOS_RECORDS>/<pid>.jsonl``: a ``start`` line when
the actor begins and an ``end`` line when it returns, with this host's clock (all test processes
share it), the retry count and the start the rate limiter recorded (Redis clock, microseconds).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import dramatiq
from dramatiq.middleware import CurrentMessage

import gabay.actors  # noqa: F401  (binds the actors below to gabay's broker)
from gabay.middleware.rate_limit import STARTED_OPTION

QUEUE = "gabay-chaos"


def _write(event: str, token: str, **extra: object) -> None:
    message = CurrentMessage.get_current_message()
    options = message.options if message is not None else {}
    line = {"event": event, "token": token, "at": time.time(), "pid": os.getpid(),
            "retries": options.get("retries", 0), "limiter_start_us": options.get(STARTED_OPTION),
            **extra}
    directory = Path(os.environ["GABAY_CHAOS_RECORDS"])
    with open(directory / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


@dramatiq.actor(queue_name=QUEUE, max_concurrency=1, max_retries=3)
def one_at_a_time(token: str, seconds: float) -> None:
    """A mutex across the cluster."""
    _write("start", token)
    time.sleep(seconds)
    _write("end", token)


@dramatiq.actor(queue_name=QUEUE, rate_limit="4/2s", max_retries=3)
def four_per_two_seconds(token: str) -> None:
    """At most 4 starts in any 2 s, cluster-wide."""
    _write("start", token)
    _write("end", token)


@dramatiq.actor(queue_name=QUEUE, max_retries=3)
def plain(token: str, seconds: float) -> None:
    """No limit: runs as soon as a thread takes it."""
    _write("start", token)
    time.sleep(seconds)
    _write("end", token)


@dramatiq.actor(queue_name=QUEUE, max_retries=3, min_backoff=100, max_backoff=200)
def fails_once(token: str) -> None:
    """Fails on its first run, once the test created ``<records>/<token>.fail``; then succeeds."""
    _write("start", token)
    flag = Path(os.environ["GABAY_CHAOS_RECORDS"]) / f"{token}.failed"
    if not flag.exists():
        flag.touch()
        release = flag.with_suffix(".fail")
        deadline = time.monotonic() + 30
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        raise RuntimeError(f"{token} fails on its first run")
    _write("end", token)


OTHER_QUEUE = "gabay-chaos-other"


def _hold(name: str, limit: float = 60.0) -> None:
    """Wait while the test keeps ``<records>/<name>.hold`` in place (at most ``limit`` seconds)."""
    flag = Path(os.environ["GABAY_CHAOS_RECORDS"]) / f"{name}.hold"
    deadline = time.monotonic() + limit
    while flag.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


@dramatiq.actor(queue_name=OTHER_QUEUE, max_retries=3)
def elsewhere(token: str) -> None:
    """On a queue of its own, so that a test can leave it without a live consumer."""
    _write("start", token)
    _hold(token)
    _write("end", token)


@dramatiq.actor(queue_name=QUEUE, max_concurrency=3, max_retries=3)
def three_at_once(token: str, hold: str) -> None:
    """Cap 3; runs while ``<hold>.hold`` exists."""
    _write("start", token)
    _hold(hold)
    _write("end", token)


@dramatiq.actor(queue_name=QUEUE, max_concurrency=1, max_retries=3)
def guarded(token: str, hold: str) -> None:
    """Cap 1; waits, then checks it still owns the job before its side effect (``effect``)."""
    _write("start", token)
    _hold(hold)
    dramatiq.get_broker().ownership.check()  # type: ignore[attr-defined]
    _write("effect", token)
    _write("end", token)
