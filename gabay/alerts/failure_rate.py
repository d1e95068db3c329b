"""Rule ``failure_rate``: an actor whose runs fail too often.

Fires for an actor with at least ``ALERT_FAILURE_MIN_RUNS`` runs in the last
``ALERT_FAILURE_WINDOW`` seconds (whole minutes) of which more than ``ALERT_FAILURE_RATE`` (a
share, 0.2 = 20 %) failed; resolves when the share falls back (or the runs get too few to judge).
"""

from __future__ import annotations

from gabay.alerts.actor_runs import ActorRuns
from gabay.alerts.notification import Finding, Severity
from gabay.alerts.rules import ClusterView


class FailureRate:
    name = "failure_rate"
    severity: Severity = "warning"
    hold_s = 0.0

    def __init__(self, runs: ActorRuns, rate: float, min_runs: int) -> None:
        self.runs = runs
        self.rate = rate
        self.min_runs = min_runs

    def check(self, view: ClusterView) -> list[Finding]:
        findings = []
        for actor, (ok, failed) in sorted(self.runs.totals(view.wall).items()):
            runs = ok + failed
            if runs >= self.min_runs and failed / runs > self.rate:
                window = self.runs.window_s / 60
                findings.append(Finding(
                    actor, f"actor {actor!r}: {failed} of {runs} runs failed in the last "
                           f"{window:g} min ({failed / runs:.0%}, threshold {self.rate:.0%})",
                    {"actor": actor, "runs": runs, "failed": failed,
                     "rate": round(failed / runs, 3), "threshold": self.rate,
                     "window_min": window}))
        return findings
