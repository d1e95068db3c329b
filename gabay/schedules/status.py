"""The schedules as JSON-able data, for ``gabay schedules``, the status API and the dashboard.

Times are ISO 8601 in each schedule's own zone, with their offset; epoch milliseconds come along
for scripts. "Now" is the Redis server's clock, as the leader's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import redis

from gabay.keys import Keys
from gabay.schedules.config import Schedule, load_schedules
from gabay.schedules.cron import latest_due, local, next_runs
from gabay.schedules.lease import LeaderLease
from gabay.schedules.state import ScheduleRecord, ScheduleState
from gabay.settings import Settings


def schedule_status(settings: Settings, client: redis.Redis, *, runs: int = 3) -> list[dict[str, Any]]:
    """Every configured schedule with its next ``runs`` runs, pause state, last run and its outcome.

    Raises ConfigError for a bad schedules file and redis.RedisError when Redis does not answer.
    """
    return describe(load_schedules(settings), client, settings.keys, runs=runs)


def leader_status(settings: Settings, client: redis.Redis) -> dict[str, Any] | None:
    """The current leader: ``{"token": 7, "identity": "host:pid:worker id"}``, or None."""
    holder = LeaderLease(client, settings.keys, "", 1).holder()
    if holder is None:
        return None
    token, _, identity = holder.partition(" ")
    return {"token": int(token), "identity": identity}


def describe(schedules: list[Schedule], client: redis.Redis, keys: Keys, *, runs: int = 3,
             now_ms: int | None = None) -> list[dict[str, Any]]:
    if now_ms is None:
        seconds, micros = client.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
    records = ScheduleState(client, keys).records([s.name for s in schedules])
    return [_entry(s, records[s.name], now_ms, runs) for s in schedules]


def _entry(schedule: Schedule, record: ScheduleRecord, now_ms: int, runs: int) -> dict[str, Any]:
    def when(ms: int | None) -> str | None:
        return local(schedule, ms).isoformat() if ms is not None else None

    due = latest_due(schedule, now_ms, record.last_slot_ms) if record.last_slot_ms is not None else None
    overdue = (due is not None and schedule.enabled and not record.paused
               and now_ms - due > schedule.grace_seconds * 1000)
    last_run = dataclasses.asdict(record.last_run) if record.last_run else None
    if last_run is not None:
        last_run.update(slot=when(last_run["slot_ms"]), fired_at=when(last_run["fired_at_ms"]))
    return {
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "actor": schedule.actor,
        "args": list(schedule.args),
        "kwargs": schedule.kwargs,
        "misfire": schedule.misfire,
        "grace_seconds": schedule.grace_seconds,
        "enabled": schedule.enabled,
        "paused": record.paused,
        "next_runs": [moment.isoformat() for moment in next_runs(schedule, runs, local(schedule, now_ms))],
        "last_slot": when(record.last_slot_ms),
        "last_run": last_run,
        "last_skip": ({**record.last_skip, "slot": when(record.last_skip["slot_ms"])}
                      if record.last_skip else None),
        "overdue_since": when(due) if overdue else None,
    }


def monitor_line(entries: list[dict[str, Any]], leader: dict[str, Any] | None) -> str | None:
    """The schedules' line of the monitoring line (None when no schedule is configured).

    ``Schedules - Count: 3, Paused: 1, Overdue: 0, Leader: host:pid, Next: digests at 07:00+08:00``
    """
    if not entries:
        return None
    paused = sum(1 for e in entries if e["paused"])
    overdue = [e["name"] for e in entries if e["overdue_since"]]
    active = [e for e in entries if e["enabled"] and not e["paused"] and e["next_runs"]]
    soonest = min(active, key=lambda e: _epoch(e["next_runs"][0]), default=None)
    holder = leader["identity"].rsplit(":", 1)[0] if leader else "none"
    line = (f"Schedules - Count: {len(entries)}, Paused: {paused}, Overdue: {len(overdue)}"
            + (f" ({', '.join(overdue)})" if overdue else "") + f", Leader: {holder}")
    if soonest is not None:
        line += f", Next: {soonest['name']} at {soonest['next_runs'][0]}"
    return line


def _epoch(moment: str) -> float:
    return dt.datetime.fromisoformat(moment).timestamp()
