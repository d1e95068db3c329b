"""What the leader does with a schedule now: fire its due slot, skip it, or nothing (misfire policy).

A slot is *missed* when it could not fire within ``grace_seconds`` of its time (no leader, Redis
away). Then ``run_once`` fires it once, late: however many slots were missed, they make one run
(the latest missed slot's). ``skip`` records it as skipped; the next slot fires on time. Within
the grace period both fire normally. A schedule seen for the first time only after its slot (a
new schedule, or Redis lost its state) starts from that slot without firing it: adding a daily
09:00 job at 15:00 does not run it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gabay.schedules.config import Schedule
from gabay.schedules.cron import latest_due

Action = Literal["fire", "skip", "baseline"]


@dataclass(frozen=True)
class Decision:
    """For slot ``slot`` (epoch ms): ``action``, ``late_ms`` after the slot, and why when not firing."""

    slot: int
    action: Action
    late_ms: int
    reason: str = ""

    @property
    def late(self) -> bool:
        return self.action == "fire" and self.reason == "late"


def decide(schedule: Schedule, now_ms: int, last_slot: int | None) -> Decision | None:
    """The decision for the latest slot after ``last_slot`` that is due at ``now_ms``; None if none is."""
    due = latest_due(schedule, now_ms, last_slot)
    if due is None:
        return None
    late_ms = now_ms - due
    missed = late_ms > schedule.grace_seconds * 1000
    if last_slot is None and missed:
        return Decision(due, "baseline", late_ms, "first seen after its slot")
    if not schedule.enabled:
        return Decision(due, "skip", late_ms, "disabled")
    if not missed:
        return Decision(due, "fire", late_ms)
    if schedule.misfire == "run_once":
        return Decision(due, "fire", late_ms, "late")
    return Decision(due, "skip", late_ms, f"missed by {late_ms / 1000:.1f} s (misfire = skip)")
