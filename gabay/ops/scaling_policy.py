"""When to act on the desired process count: hysteresis so that autoscaling does not flap.

Pure: it is fed observations with their time (a monotonic clock) and answers a decision or None.

* **Up** when the need held for ``up_after`` seconds: the desired count was above the current one
  *and* the oldest waiting message had waited ``up_wait`` seconds, at every observation of that
  span. It goes straight to the lowest desired count of the span (the need that held throughout).
* **Down** when the desired count stayed below the current one for ``down_after`` seconds (longer:
  starting a process costs seconds, keeping an idle one costs little). It goes down to the highest
  desired count of that span (Kubernetes' HPA does the same with its stabilization window).
* At most one decision per ``cooldown`` seconds, and none while a removed process still drains.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hysteresis:
    """The numbers of the policy, in seconds (``AUTOSCALE_*`` settings)."""

    up_after: float = 15.0
    down_after: float = 120.0
    cooldown: float = 30.0
    up_wait: float = 2.0


@dataclass(frozen=True)
class Observation:
    """What the autoscaler saw at ``now``: the (bounded) desired count, its own live processes."""

    now: float
    desired: int
    current: int
    oldest_wait: float = 0.0
    draining: int = 0


@dataclass(frozen=True)
class Step:
    """A decision of the policy: go from ``before`` to ``after`` processes, and why."""

    direction: str
    before: int
    after: int
    desired: int
    reason: str


class ScalingPolicy:
    """Feeds on observations; answers a :class:`Step` when one is due."""

    def __init__(self, hysteresis: Hysteresis) -> None:
        self.h = hysteresis
        self._up_since: float | None = None
        self._up_floor = 0
        self._down_since: float | None = None
        self._down_peak = 0
        self._last_decision: float | None = None

    def observe(self, seen: Observation) -> Step | None:
        self._track(seen)
        if seen.draining or self._cooling(seen.now):
            return None
        if self._up_since is not None and seen.now - self._up_since >= self.h.up_after:
            return self._decide(seen, "up", self._up_floor,
                                f"{self._up_floor} wanted for {seen.now - self._up_since:.0f} s, "
                                f"oldest message waiting {seen.oldest_wait:.0f} s")
        if self._down_since is not None and seen.now - self._down_since >= self.h.down_after:
            return self._decide(seen, "down", self._down_peak,
                                f"at most {self._down_peak} wanted for {seen.now - self._down_since:.0f} s")
        return None

    def _track(self, seen: Observation) -> None:
        """Start, extend or end the up and down spans with this observation."""
        if seen.desired > seen.current and seen.oldest_wait >= self.h.up_wait:
            if self._up_since is None:
                self._up_since, self._up_floor = seen.now, seen.desired
            self._up_floor = min(self._up_floor, seen.desired)
        else:
            self._up_since = None
        if seen.desired < seen.current:
            if self._down_since is None:
                self._down_since, self._down_peak = seen.now, seen.desired
            self._down_peak = max(self._down_peak, seen.desired)
        else:
            self._down_since = None

    def _cooling(self, now: float) -> bool:
        return self._last_decision is not None and now - self._last_decision < self.h.cooldown

    def _decide(self, seen: Observation, direction: str, target: int, reason: str) -> Step | None:
        if target == seen.current:
            return None
        self._last_decision = seen.now
        self._up_since = self._down_since = None  # a new span starts after the decision
        return Step(direction, seen.current, target, seen.desired, reason)
