"""Cron arithmetic on epoch milliseconds, in each schedule's own time zone (cronsim does the parsing).

A *slot* is one instant a schedule is due, as epoch milliseconds (whole seconds). Time zones and
DST follow Debian's cron, as cronsim does: a time skipped by the spring change runs at the
change (``30 2 * * *`` in New York runs at 03:00 that day), a fixed time repeated by the autumn
change runs once (the first ``01:30``), and wildcard minutes and hours run in both repeated hours.

Only forward iteration is used: cronsim's reverse iteration does not agree with its forward one
around the autumn change, and the slots must be the same whichever way they are found.
"""

from __future__ import annotations

import datetime as dt
from itertools import islice

from cronsim import CronSim

from gabay.schedules.config import Schedule

#: How far back ``latest_due`` looks, widening step by step (2 s ... 50 years).
WINDOWS_MS = (2_000, 60_000, 3_600_000, 86_400_000, 32 * 86_400_000, 400 * 86_400_000,
              50 * 366 * 86_400_000)


def to_ms(moment: dt.datetime) -> int:
    return round(moment.timestamp() * 1000)


def local(schedule: Schedule, ms: int) -> dt.datetime:
    """Epoch milliseconds as an aware datetime in the schedule's zone."""
    return dt.datetime.fromtimestamp(ms / 1000, schedule.zone)


def next_slot(schedule: Schedule, after_ms: int) -> int | None:
    """The first slot strictly after ``after_ms`` (None: no match within 50 years)."""
    try:
        return to_ms(next(CronSim(schedule.cron, local(schedule, after_ms))))
    except StopIteration:
        return None


def next_runs(schedule: Schedule, count: int = 3, after: dt.datetime | None = None) -> list[dt.datetime]:
    """The next ``count`` runs strictly after ``after`` (default: now), in the schedule's zone."""
    start = (after or dt.datetime.now(dt.UTC)).astimezone(schedule.zone)
    return list(islice(CronSim(schedule.cron, start), count))


def latest_due(schedule: Schedule, now_ms: int, after_ms: int | None = None) -> int | None:
    """The latest slot at or before ``now_ms`` and strictly after ``after_ms``; None if there is none.

    Looks back through widening windows, so a frequent schedule is not iterated from a slot handled
    long ago (after an outage of days, an every-second schedule costs one window, not days of slots).
    """
    for window in WINDOWS_MS:
        low = now_ms - window
        if after_ms is not None and low <= after_ms:
            return _last_until(schedule, after_ms, now_ms)
        found = _last_until(schedule, low, now_ms)
        if found is not None:
            return found
    return None


def _last_until(schedule: Schedule, low_ms: int, now_ms: int) -> int | None:
    """The last slot in ``(low_ms, now_ms]``, iterating forward."""
    last = None
    for moment in CronSim(schedule.cron, local(schedule, low_ms)):
        slot = to_ms(moment)
        if slot > now_ms:
            break
        if slot > low_ms:
            last = slot
    return last
