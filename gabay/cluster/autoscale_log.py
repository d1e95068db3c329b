"""The latest scaling decisions of ``gabay workers --autoscale``, in Redis, for the dashboard.

A list of JSON objects, newest first, trimmed to ``KEEP`` entries in the same transaction that
adds one; every autoscaling host writes to it (each entry names its host and supervisor pid).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import redis

from gabay.keys import Keys

KEEP = 50


@dataclass(frozen=True)
class ScaleDecision:
    """One decision: from how many local processes to how many, when and why."""

    at: float
    direction: str  # "up" or "down"
    before: int
    after: int
    desired: int
    reason: str
    host: str = ""
    pid: int = 0

    def describe(self) -> str:
        """The log line's text: ``up 1 -> 2 processes (desired 2): <reason>``."""
        return (f"{self.direction} {self.before} -> {self.after} processes "
                f"(desired {self.desired}): {self.reason}")


class AutoscaleLog:
    """Append and read the decision list."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.key = keys.autoscale_decisions

    def record(self, decision: ScaleDecision) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.lpush(self.key, json.dumps(asdict(decision), sort_keys=True))
        pipe.ltrim(self.key, 0, KEEP - 1)
        pipe.execute()

    def recent(self, limit: int = KEEP) -> list[dict[str, Any]]:
        """The latest decisions as JSON-able dicts, newest first (unreadable entries skipped)."""
        decisions = []
        for raw in self.client.lrange(self.key, 0, max(limit, 1) - 1):
            try:
                decisions.append(json.loads(raw))
            except ValueError:
                continue
        return decisions
