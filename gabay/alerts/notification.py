"""What a rule finds and what a channel sends: a finding about a subject, a notification of an incident.

Alerts name things by id only (queue, actor, message id, schedule name): never a student's name or
address. :func:`scrub` is the second line of defence for the free text a rule passes on (an
exception's class name, a schedule's name): anything shaped like an email address is masked.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Literal

EMAIL_LIKE = re.compile(r"[^\s@<>()\"',;:]+@[^\s@<>()\"',;:]+")
State = Literal["firing", "resolved"]
Severity = Literal["critical", "warning"]


def scrub(text: str, limit: int = 500) -> str:
    """``text`` without anything shaped like an email address, at most ``limit`` characters."""
    return EMAIL_LIKE.sub("[address]", text)[:limit]


def scrub_details(value: Any) -> Any:
    """``scrub`` applied to every string of a JSON-like value."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(str(k), 100): scrub_details(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_details(v) for v in value]
    return value


@dataclass(frozen=True)
class Finding:
    """One subject of a rule whose condition holds now; ``details`` is JSON (ids and numbers)."""

    subject: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Notification:
    """One message about one incident: it started (``firing``) or it ended (``resolved``)."""

    incident_id: str
    rule: str
    subject: str
    state: State
    severity: Severity
    summary: str
    details: dict[str, Any]
    opened_at: float
    resolved_at: float | None = None
    source: str = ""
    dashboard_url: str | None = None
    test: bool = False

    @property
    def title(self) -> str:
        """``[FIRING] queue 'generation' has 1500 waiting messages`` (``[TEST]`` first for a test)."""
        prefix = "[TEST] " if self.test else ""
        return f"{prefix}[{self.state.upper()}] {self.summary}"

    @property
    def dedupe_key(self) -> str:
        """The same for every attempt to send this message: ``<incident id>:<state>``."""
        return f"{self.incident_id}:{self.state}"

    def when(self) -> str:
        """Since when, and until when for a resolved incident, in UTC."""
        start = _utc(self.opened_at)
        if self.state == "resolved" and self.resolved_at is not None:
            return f"from {start} to {_utc(self.resolved_at)}"
        return f"since {start}"

    def as_json(self) -> dict[str, Any]:
        """The body of the generic webhook (documented in the README, version 1)."""
        return {
            "version": 1,
            "id": self.incident_id,
            "event": self.state,
            "rule": self.rule,
            "subject": self.subject,
            "severity": self.severity,
            "summary": self.summary,
            "details": self.details,
            "opened_at": self.opened_at,
            "resolved_at": self.resolved_at,
            "source": self.source,
            "dashboard_url": self.dashboard_url,
            "test": self.test,
        }


def _utc(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
