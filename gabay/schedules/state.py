"""What Redis keeps per schedule: its pause flag, its last slot and last run, its recent history.

A pause is a field of one hash (``schedules:paused``: name -> ``1``), with no expiry: it lasts
until resumed and survives restarts. The leader reads it inside the fire script, so a pause
written before a slot's fire is always honoured (the slot is recorded as skipped, "paused").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from gabay.keys import Keys


@dataclass(frozen=True)
class LastRun:
    """The schedule's latest fired run: its message id, slot, when it fired, and how it went."""

    message_id: str
    slot_ms: int
    fired_at_ms: int
    late: bool
    outcome: str  # enqueued, running, succeeded, failed, deferred
    outcome_at_ms: int
    error: str
    attempts: int


@dataclass(frozen=True)
class ScheduleRecord:
    """What Redis holds about one schedule."""

    paused: bool
    last_slot_ms: int | None
    last_run: LastRun | None
    last_skip: dict[str, Any] | None
    history: list[dict[str, Any]]


class ScheduleState:
    """Reading and writing the per-schedule records of one deployment."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def pause(self, name: str) -> None:
        self.client.hset(self.keys.schedule_paused, name, "1")

    def resume(self, name: str) -> None:
        self.client.hdel(self.keys.schedule_paused, name)

    def paused(self) -> set[str]:
        return {name.decode() for name in self.client.hkeys(self.keys.schedule_paused)}

    def records(self, names: list[str], history: int = 10) -> dict[str, ScheduleRecord]:
        """The records of ``names``, read in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.keys.schedule_paused)
        for name in names:
            pipe.hgetall(self.keys.schedule_state(name))
            pipe.lrange(self.keys.schedule_history(name), 0, history - 1)
        replies = pipe.execute()
        paused = {k.decode() for k, v in replies[0].items() if v == b"1"}
        out = {}
        for i, name in enumerate(names):
            raw, entries = replies[1 + 2 * i], replies[2 + 2 * i]
            state = {k.decode(): v.decode() for k, v in raw.items()}
            out[name] = ScheduleRecord(
                paused=name in paused,
                last_slot_ms=int(state["slot"]) if "slot" in state else None,
                last_run=_last_run(state),
                last_skip=({"slot_ms": int(state["skipped_slot"]), "reason": state.get("skip_reason", ""),
                            "at_ms": int(state.get("skipped_at", "0"))}
                           if "skipped_slot" in state else None),
                history=[_entry(e) for e in entries])
        return out


def _last_run(state: dict[str, str]) -> LastRun | None:
    if "message_id" not in state:
        return None
    return LastRun(message_id=state["message_id"], slot_ms=int(state["run_slot"]),
                   fired_at_ms=int(state["fired_at"]), late=state.get("late") == "1",
                   outcome=state.get("outcome", ""), outcome_at_ms=int(state.get("outcome_at") or 0),
                   error=state.get("error", ""), attempts=int(state.get("attempts") or 0))


def _entry(raw: bytes) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(raw)
    for field in ("slot", "at"):
        entry[field] = int(entry[field])
    return entry
