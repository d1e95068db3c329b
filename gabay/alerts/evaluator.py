"""One evaluation pass: every rule looks at Redis, the incidents record it, claimed alerts go out.

Every worker process runs a pass every ``ALERT_INTERVAL`` seconds; the incident store makes sure
that one process sends each alert. A rule that fails for another reason than Redis (a bug, a
malformed record) is skipped for this pass, and so are its incidents: nothing is resolved on a
check that did not happen. A Redis failure ends the pass (the caller reports the outage).
A disabled rule finds nothing, so its open incidents resolve.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import redis

from gabay.alerts.channels import Notifier
from gabay.alerts.incidents import MAX_TRIES, Claim, IncidentStore
from gabay.alerts.notification import Finding, scrub, scrub_details
from gabay.alerts.rules import ClusterView, Rule
from gabay.errors import RedisUnavailable

logger = logging.getLogger(__name__)


class Evaluator:
    """Runs ``rules`` against a fresh :class:`ClusterView` per pass and sends through ``notifier``.

    ``view_at(now_ms)`` builds the view; ``clock()`` is the Redis server's time in milliseconds.
    """

    def __init__(self, rules: Sequence[Rule], incidents: IncidentStore, notifier: Notifier, *,
                 view_at: Callable[[int], ClusterView], clock: Callable[[], int],
                 disabled: frozenset[str] = frozenset()) -> None:
        self.rules = list(rules)
        self.incidents = incidents
        self.notifier = notifier
        self.view_at = view_at
        self.clock = clock
        self.disabled = disabled
        self._failing: set[str] = set()

    @property
    def rule_names(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.rules)

    def run_once(self) -> int:
        """Evaluate every rule once; returns the number of notifications this process sent."""
        view = self.view_at(self.clock())
        sent = 0
        for rule in self.rules:
            findings = self._check(rule, view)
            if findings is None:
                continue
            for claim in self._observe(rule, findings, view.now_ms):
                sent += self._send(claim)
        return sent

    def _check(self, rule: Rule, view: ClusterView) -> list[Finding] | None:
        if rule.name in self.disabled:
            return []
        try:
            findings = rule.check(view)
        except (redis.RedisError, RedisUnavailable):
            raise
        except Exception:
            if rule.name not in self._failing:
                logger.exception("Alert rule %s could not be checked; its incidents stay as they are",
                                 rule.name)
            self._failing.add(rule.name)
            return None
        self._failing.discard(rule.name)
        return [Finding(scrub(f.subject, 200), scrub(f.summary), scrub_details(f.details))
                for f in findings]

    def _observe(self, rule: Rule, findings: list[Finding], now_ms: int) -> list[Claim]:
        claims = []
        found = {f.subject: f for f in findings}
        for subject in sorted(set(found) | self.incidents.subjects(rule.name)):
            claim = self.incidents.observe(rule.name, rule.severity, subject, found.get(subject),
                                           now_ms=now_ms, hold_s=rule.hold_s)
            if claim is not None:
                claims.append(claim)
        return claims

    def _send(self, claim: Claim) -> int:
        report = self.notifier.send(claim.notification, skip=claim.done)
        done = set(claim.done) | report.finished
        complete = not report.retryable or claim.tries + 1 >= MAX_TRIES
        if report.retryable and complete:
            logger.error("Alert %s given up for %s after %d attempts", claim.notification.dedupe_key,
                         ", ".join(sorted(report.retryable)), claim.tries + 1)
        self.incidents.finish(claim, done, complete=complete, now_ms=self.clock(),
                              delivered=bool(report.delivered))
        return 1 if report.delivered else 0
