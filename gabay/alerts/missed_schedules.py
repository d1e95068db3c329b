"""Rule ``missed_schedule``, and how a scheduler tells it: a job that did not run in its slot.

The scheduler (whatever runs periodic jobs) calls :func:`report_missed_schedule` when it finds
that a slot passed without its run, and :func:`report_schedule_ran` after every successful run::

    report_missed_schedule(client, settings.keys, "nightly-digest", "2026-12-03T02:00Z")
    report_schedule_ran(client, settings.keys, "nightly-digest")

Both are one Redis command on ``alerts:missed-schedules`` (hash: name -> JSON ``{"slot", "at"}``;
writing it directly is the same). A reported miss opens the schedule's incident; the next run
resolves it. Names and slots are ids: no personal data.
"""

from __future__ import annotations

import json
import time

import redis

from gabay.alerts.notification import Finding, Severity, scrub
from gabay.alerts.rules import ClusterView
from gabay.keys import Keys


def report_missed_schedule(client: redis.Redis, keys: Keys, name: str, slot: str,
                           at: float | None = None) -> None:
    """Scheduled job ``name`` did not run in ``slot`` (an id of the slot, such as its start time)."""
    record = {"slot": slot, "at": time.time() if at is None else at}
    client.hset(keys.missed_schedules, name, json.dumps(record))


def report_schedule_ran(client: redis.Redis, keys: Keys, name: str) -> None:
    """Scheduled job ``name`` ran: its missed-run incident, if any, resolves."""
    client.hdel(keys.missed_schedules, name)


class MissedSchedules:
    name = "missed_schedule"
    severity: Severity = "warning"
    hold_s = 0.0

    def check(self, view: ClusterView) -> list[Finding]:
        findings = []
        for raw_name, raw in sorted(view.client.hgetall(view.keys.missed_schedules).items()):
            name = raw_name.decode()
            try:
                record = json.loads(raw)
                slot, at = str(record.get("slot", "")), float(record.get("at", 0))
            except (ValueError, TypeError, AttributeError):
                slot, at = "", 0.0
            findings.append(Finding(
                name, f"scheduled job {scrub(name, 100)!r} missed its run of {scrub(slot, 100)}",
                {"schedule": scrub(name, 100), "slot": scrub(slot, 100), "reported_at": at}))
        return findings
