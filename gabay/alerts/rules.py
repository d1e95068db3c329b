"""What a rule is, and the view of the cluster that every rule of one evaluation pass shares.

A rule looks at Redis and returns a :class:`~gabay.alerts.notification.Finding` for every subject
whose condition holds now; a subject it does not return is fine (its incident resolves). A rule
that cannot look (Redis does not answer) raises: then nothing is resolved, since nothing is known.
``hold_s``: how long the condition must hold before the incident fires.
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import Protocol

import redis

from gabay.alerts.notification import Finding, Severity
from gabay.cluster.status import ClusterStatus
from gabay.cluster.status_reader import StatusReader
from gabay.errors import RedisUnavailable
from gabay.keys import Keys


class Rule(Protocol):
    name: str
    severity: Severity
    hold_s: float

    def check(self, view: ClusterView) -> list[Finding]: ...


class ClusterView:
    """One evaluation pass's reads: the Redis client and keys, the time, the cluster status (read
    once, on first use)."""

    def __init__(self, client: redis.Redis, keys: Keys, reader: StatusReader, now_ms: int) -> None:
        self.client = client
        self.keys = keys
        self.reader = reader
        self.now_ms = now_ms
        self.wall = time.time()

    @property
    def now(self) -> float:
        """Now on the Redis server's clock, epoch seconds."""
        return self.now_ms / 1000

    @cached_property
    def status(self) -> ClusterStatus:
        """The cluster status; raises RedisUnavailable when Redis did not answer."""
        status = self.reader.read()
        if not status.redis_reachable:
            raise RedisUnavailable("; ".join(status.reasons) or "Redis does not answer")
        return status
