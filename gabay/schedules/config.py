"""The schedules: a TOML file named by ``SCHEDULES_FILE``, then ``SCHEDULES_<NAME>_<FIELD>`` overrides.

One table per schedule, its name the table's key::

    [schedules.nightly-report]
    cron = "0 2 * * *"           # 5 fields, or 6 with seconds first
    timezone = "Asia/Manila"     # default SCHEDULE_TIMEZONE
    actor = "nightly_report"
    args = ["weekly"]
    kwargs = {}
    misfire = "run_once"         # or "skip"
    grace_seconds = 60
    enabled = true

An override names the schedule upper-cased with ``-`` as ``_`` (``SCHEDULES_NIGHTLY_REPORT_ENABLED``)
and one of the fields ``ENABLED``, ``CRON``, ``TIMEZONE``, ``MISFIRE``, ``GRACE_SECONDS``. Anything
wrong (the file, a field, an override naming no schedule) is one :class:`ConfigError` line.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from typing import Any, Literal

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from gabay.errors import ConfigError, describe_validation
from gabay.settings import SCHEDULE_VARIABLE_PREFIX, Settings

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
#: Override suffix -> field of :class:`Schedule`.
OVERRIDABLE = {"ENABLED": "enabled", "CRON": "cron", "TIMEZONE": "timezone", "MISFIRE": "misfire",
               "GRACE_SECONDS": "grace_seconds"}


class Schedule(BaseModel):
    """One scheduled job. ``timezone`` is always set once loaded (the default filled in)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    timezone: str  # before cron: the cron check uses it
    cron: str
    actor: str = Field(min_length=1)
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = Field(default_factory=dict)
    misfire: Literal["run_once", "skip"] = "run_once"
    grace_seconds: float = Field(60.0, ge=0, le=7 * 24 * 3600)
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("must be 1-64 of a-z, 0-9, '-' and '_', starting with a letter or digit")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str, info: ValidationInfo) -> str:
        zone = zoneinfo.ZoneInfo(info.data.get("timezone") or "UTC")
        try:
            next(CronSim(value, dt.datetime.now(zone)))
        except CronSimError as exc:
            raise ValueError(f"{exc} in {value!r} (5 fields, or 6 with seconds first)") from None
        except StopIteration:
            raise ValueError(f"{value!r} never matches in the next 50 years") from None
        return value

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def variable_name(self) -> str:
        """The ``<NAME>`` of this schedule's override variables."""
        return self.name.upper().replace("-", "_")


# -- default schedules --
#: Schedules every deployment has, with or without ``SCHEDULES_FILE``: a ``[schedules.<name>]``
#: table of the same name in the file replaces one, ``SCHEDULES_<NAME>_ENABLED=false`` turns one
#: off. The fields are a file table's (the time zone defaults to ``SCHEDULE_TIMEZONE``); each area
#: adds its entries in a block of its own.
DEFAULT_SCHEDULES: dict[str, dict[str, Any]] = {
    # -- backups (gabay/backups): the results store and Redis, every night --
    "nightly-backup": {"cron": "30 1 * * *", "actor": "run_backup", "misfire": "run_once",
                       "grace_seconds": 3600},
    # -- end of backups --
    # -- teacher digests and reports (gabay/digests, gabay/reports): the digests' fan-out checks
    # every hour which teachers' periods are due in their own zone (from DIGEST_HOUR), so a
    # missed hour is caught up by the next one (skip); the exams whose analytics changed since
    # their last report get a new one on Monday mornings --
    "digests-daily": {"cron": "5 * * * *", "actor": "send_digests", "args": ["daily"],
                      "misfire": "skip", "grace_seconds": 60},
    "digests-weekly": {"cron": "10 * * * *", "actor": "send_digests", "args": ["weekly"],
                       "misfire": "skip", "grace_seconds": 60},
    "exam-reports": {"cron": "0 6 * * 1", "actor": "send_due_reports", "misfire": "run_once",
                     "grace_seconds": 3600},
    # -- end of teacher digests and reports --
}


def load_schedules(settings: Settings) -> list[Schedule]:
    """The default schedules (unless ``SCHEDULE_DEFAULTS=false``) and those of ``SCHEDULES_FILE``.

    ConfigError when anything is wrong.
    """
    defaults = DEFAULT_SCHEDULES if settings.schedule_defaults else {}
    if settings.schedules_file is None:
        if not defaults and settings.schedule_overrides:
            first = next(iter(settings.schedule_overrides))
            raise ConfigError(f"invalid schedules: {first} is set but SCHEDULES_FILE is not")
        return parse_schedules("", settings.schedule_timezone, settings.schedule_overrides,
                               source="the default schedules (SCHEDULES_FILE is not set)",
                               defaults=defaults)
    path = settings.schedules_file
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"invalid schedules: SCHEDULES_FILE {path}: {exc.strerror or exc}") from None
    return parse_schedules(text, settings.schedule_timezone, settings.schedule_overrides, source=str(path),
                           defaults=defaults)


def parse_schedules(text: str, default_zone: str, overrides: Mapping[str, str],
                    source: str = "schedules",
                    defaults: Mapping[str, Mapping[str, Any]] | None = None) -> list[Schedule]:
    """Schedules from TOML ``text`` with ``overrides`` applied; ConfigError naming ``source``.

    ``defaults``: schedules that ``text`` may replace by name (:data:`DEFAULT_SCHEDULES`).
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid schedules: {source}: not valid TOML: {exc}") from None
    unknown = sorted(set(document) - {"schedules"})
    if unknown:
        raise ConfigError(f"invalid schedules: {source}: unknown top-level key {unknown[0]!r} "
                          "(each schedule is a [schedules.<name>] table)")
    tables = document.get("schedules", {})
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise ConfigError(f"invalid schedules: {source}: each schedule is a [schedules.<name>] table")
    raw = {name: {**table, "name": name} for name, table in (defaults or {}).items()}
    raw.update({name: {**table, "name": name} for name, table in tables.items()})
    _apply_overrides(raw, overrides, source)
    schedules = []
    for name, fields in raw.items():
        fields.setdefault("timezone", default_zone)
        try:
            schedules.append(Schedule.model_validate(fields))
        except ValidationError as exc:
            raise ConfigError(f"invalid schedules: {source}: schedule {name!r}: "
                              f"{describe_validation(exc, subject='schedule')}") from None
    return schedules


def _apply_overrides(raw: dict[str, dict[str, Any]], overrides: Mapping[str, str], source: str) -> None:
    by_variable: dict[str, str] = {}
    for name in raw:
        variable = name.upper().replace("-", "_")
        if variable in by_variable:
            raise ConfigError(f"invalid schedules: {source}: schedules {by_variable[variable]!r} and "
                              f"{name!r} have the same variable name SCHEDULES_{variable}_*")
        by_variable[variable] = name
    for variable, value in overrides.items():
        rest = variable.removeprefix(SCHEDULE_VARIABLE_PREFIX)
        target = next(((by_variable[n], OVERRIDABLE[f]) for n in by_variable for f in OVERRIDABLE
                       if rest == f"{n}_{f}"), None)
        if target is None:
            raise ConfigError(f"invalid schedules: {variable}: names no schedule of {source} and field "
                              f"({', '.join(OVERRIDABLE)})")
        name, field = target
        raw[name][field] = _override_value(field, value, variable)


def _override_value(field: str, value: str, variable: str) -> Any:
    if field == "enabled":
        lowered = value.strip().lower()
        if lowered not in {"true", "false", "1", "0", "yes", "no", "on", "off"}:
            raise ConfigError(f"invalid schedules: {variable}: must be true or false")
        return lowered in {"true", "1", "yes", "on"}
    return value.strip()


def schedules_by_name(schedules: list[Schedule]) -> dict[str, Schedule]:
    return {s.name: s for s in schedules}
