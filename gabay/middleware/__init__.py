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

from gabay.middleware.recovery import Recovery
from gabay.settings import Settings


def build_middleware(settings: Settings, client: redis.Redis) -> list[Middleware]:
    """Dramatiq's defaults without Prometheus (it binds 0.0.0.0 and keeps stale files), then ours.

    Order matters: ``before_*`` hooks run in list order, ``after_*`` hooks in reverse.
    """
    return [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=10, min_backoff=2000, max_backoff=300_000),
        CurrentMessage(),
        Recovery(),
    ]
