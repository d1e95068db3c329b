"""Gabay's Dramatiq middleware, one concern per module, and the stack every broker uses."""

from __future__ import annotations

import redis
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from gabay.middleware.concurrency import ConcurrencyCaps
from gabay.middleware.control import ClusterControl
from gabay.middleware.draining import Draining
from gabay.middleware.pause import Pause
from gabay.middleware.rate_limit import RateLimits
from gabay.middleware.recovery import Recovery
from gabay.middleware.registry import WorkerRegistration
from gabay.middleware.stats import RunningJobs, Stats, StatsBuffer
from gabay.settings import Settings


def build_middleware(settings: Settings, client: redis.Redis) -> list[Middleware]:
    """Dramatiq's defaults without Prometheus (it binds 0.0.0.0 and keeps stale files), then ours.

    Order matters: ``before_*`` hooks run in list order, ``after_*`` hooks in reverse. Stats sits
    before Retries so that its ``after_process_message`` runs after Retries decided (it sees final
    failures). The gates run in the order draining, pause, concurrency cap, rate limit: a message
    is held back before it takes a slot, and it takes a (releasable) slot before it spends a
    (non-refundable) rate-limit start. Stats and RunningJobs share one buffer, published by one
    thread in one transaction.
    """
    stats = StatsBuffer()
    return [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Stats(stats),
        Retries(max_retries=10, min_backoff=2000, max_backoff=300_000),
        CurrentMessage(),
        Draining(),
        Pause(),
        ConcurrencyCaps(),
        RateLimits(),
        RunningJobs(stats),  # after the gates: only real starts count as running
        Recovery(),
        WorkerRegistration(),
        ClusterControl(),
    ]
