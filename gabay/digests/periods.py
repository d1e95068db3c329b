"""The digest periods in a teacher's time zone: a local day, or a local week from Monday.

A period's digest is due from ``DIGEST_HOUR`` on the local day after it ends (a daily digest of
Tuesday from Wednesday 07:00, a weekly one of the week from the next Monday 07:00). The periods
are local calendar days, so a day of a DST change is 23 or 25 hours long; the times are returned
in UTC, as the store keeps them.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Literal

from gabay.errors import InvalidInput

Kind = Literal["daily", "weekly"]
KINDS: tuple[Kind, ...] = ("daily", "weekly")


@dataclass(frozen=True)
class Period:
    kind: Kind
    #: The first moment and the end (exclusive), in UTC.
    start: dt.datetime
    end: dt.datetime
    #: The first local day of the period.
    first_day: dt.date
    zone: str

    @property
    def label(self) -> str:
        """``Tuesday 1 December 2026`` or ``week of Monday 23 November 2026``."""
        day = f"{self.first_day:%A} {self.first_day.day} {self.first_day:%B %Y}"
        return day if self.kind == "daily" else f"week of {day}"


def parse_kind(value: object) -> Kind:
    if value == "daily":
        return "daily"
    if value == "weekly":
        return "weekly"
    raise InvalidInput(f"a digest period is 'daily' or 'weekly', not {value!r}")


def zone_of(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r} (an IANA name such as Asia/Manila)") from None


def _midnight(day: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(dt.UTC)


def period_of(kind: Kind, first_day: dt.date, zone_name: str) -> Period:
    """The period of ``kind`` that begins on local ``first_day`` (a Monday for a week)."""
    zone = zone_of(zone_name)
    length = dt.timedelta(days=1 if kind == "daily" else 7)
    return Period(kind, _midnight(first_day, zone), _midnight(first_day + length, zone), first_day, zone_name)


def period_starting(kind: Kind, start: dt.datetime, zone_name: str) -> Period:
    """The period whose first moment is ``start`` (as a message carries it); InvalidInput otherwise."""
    first_day = start.astimezone(zone_of(zone_name)).date()
    period = period_of(kind, first_day, zone_name)
    if period.start != start.astimezone(dt.UTC) or (kind == "weekly" and first_day.weekday() != 0):
        raise InvalidInput(f"{start.isoformat()} is not the start of a {kind} period in {zone_name}")
    return period


def latest_due(kind: Kind, now: dt.datetime, zone_name: str, send_hour: int) -> Period:
    """The latest period whose digest is due at ``now`` (local ``send_hour`` after its end)."""
    local = now.astimezone(zone_of(zone_name))
    today = local.date()
    # the latest local day on which a period ended at midnight and the send hour has passed
    send_day = today if local.hour >= send_hour else today - dt.timedelta(days=1)
    if kind == "daily":
        return period_of(kind, send_day - dt.timedelta(days=1), zone_name)
    monday = send_day - dt.timedelta(days=send_day.weekday())
    return period_of(kind, monday - dt.timedelta(days=7), zone_name)
