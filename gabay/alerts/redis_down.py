"""Rule ``redis_unreachable``: this process cannot reach Redis, so it alerts by itself.

Incidents are deduplicated through Redis, which is exactly what is missing here, so each process
judges and sends on its own: once Redis has failed every evaluation for ``ALERT_REDIS_DOWN_AFTER``
seconds, one firing alert, and one resolved alert when Redis answers again. Rate-limited in the
process: no new firing alert within ``ALERT_COOLDOWN`` of the previous one (a flapping Redis
alerts once), and after a send that reached no channel, the next attempt waits ``RETRY_AFTER``.
Every process that loses Redis sends its own alert (its subject is ``<host>:<pid>``): with many
processes that is many alerts, which says how far the outage reaches.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable

from gabay.alerts.channels import Notifier
from gabay.alerts.incidents import RETRY_AFTER
from gabay.alerts.notification import Notification

logger = logging.getLogger(__name__)

NAME = "redis_unreachable"


class RedisDownWatch:
    """The outage state of this process's view of Redis (monotonic clock)."""

    def __init__(self, notifier: Notifier, *, after_s: float, cooldown_s: float,
                 source: Callable[[], str], dashboard_url: str | None = None, enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.notifier = notifier
        self.after_s = after_s
        self.cooldown_s = cooldown_s
        self.source = source
        self.dashboard_url = dashboard_url
        self.enabled = enabled
        self.clock = clock
        self.down_since: float | None = None  # monotonic
        self.down_since_wall = 0.0
        self.problem = ""
        self.firing: Notification | None = None  # sent, not yet resolved
        self.last_fired: float | None = None
        self.next_try = 0.0

    def failed(self, problem: str) -> None:
        """An evaluation could not reach Redis."""
        now = self.clock()
        if self.down_since is None:
            self.down_since, self.down_since_wall = now, time.time()
        self.problem = problem
        if not self.enabled or self.firing is not None or now < self.next_try:
            return
        if now - self.down_since < self.after_s:
            return
        if self.last_fired is not None and now - self.last_fired < self.cooldown_s:
            return
        note = self._notification(now)
        if self._send(note, now):
            self.firing, self.last_fired = note, now

    def worked(self) -> None:
        """An evaluation reached Redis: the outage (if any) is over."""
        now = self.clock()
        self.down_since = None
        if self.firing is None or now < self.next_try:
            return
        resolved = dataclasses.replace(self.firing, state="resolved", resolved_at=time.time(),
                                       summary=f"{self.firing.subject} reaches Redis again")
        if self._send(resolved, now):
            self.firing = None

    def _notification(self, now: float) -> Notification:
        source = self.source()
        assert self.down_since is not None
        return Notification(
            incident_id=uuid.uuid4().hex, rule=NAME, subject=source, state="firing",
            severity="critical",
            summary=f"{source} cannot reach Redis for {now - self.down_since:.0f} s",
            details={"process": source, "problem": self.problem}, opened_at=self.down_since_wall,
            source=source, dashboard_url=self.dashboard_url)

    def _send(self, note: Notification, now: float) -> bool:
        report = self.notifier.send(note)
        if report.delivered or not report.retryable:
            return True
        self.next_try = now + RETRY_AFTER
        logger.warning("The %s alert reached no channel; trying again in %.0f s", note.state, RETRY_AFTER)
        return False
