"""Rule ``backup_failed``, and how the backup worker tells it: the last backup attempt failed.

The backup run (:mod:`gabay.backups.run`) calls :func:`report_backup_failed` when an attempt fails
and :func:`report_backup_succeeded` after every good backup. Both are one Redis command on
``alerts:backup-failed`` (JSON ``{"at", "error", "attempt"}``). A reported failure opens the
incident (subject ``backups``, critical: there may be no recent copy of the data); the next good
backup resolves it. The error is one line (a tool's message, a path): no secret, no personal data.
"""

from __future__ import annotations

import json
import time

import redis

from gabay.alerts.notification import Finding, Severity, scrub
from gabay.alerts.rules import ClusterView
from gabay.keys import Keys

NAME = "backup_failed"
SUBJECT = "backups"


def report_backup_failed(client: redis.Redis, keys: Keys, error: str, attempt: str,
                         at: float | None = None) -> None:
    """Backup attempt ``attempt`` (its id) failed with ``error`` (one line)."""
    record = {"at": time.time() if at is None else at, "error": scrub(error, 500), "attempt": attempt}
    client.set(keys.backup_failed, json.dumps(record))


def report_backup_succeeded(client: redis.Redis, keys: Keys) -> None:
    """A backup was written and verified: the failed-backup incident, if any, resolves."""
    client.delete(keys.backup_failed)


class BackupFailed:
    name = NAME
    severity: Severity = "critical"
    hold_s = 0.0

    def check(self, view: ClusterView) -> list[Finding]:
        raw = view.client.get(view.keys.backup_failed)
        if raw is None:
            return []
        try:
            record = json.loads(raw)
            error, attempt, at = str(record["error"]), str(record["attempt"]), float(record["at"])
        except (ValueError, TypeError, KeyError):
            error, attempt, at = "unreadable failure record", "", 0.0
        return [Finding(SUBJECT, f"the last backup failed: {scrub(error, 300)}",
                        {"attempt": scrub(attempt, 100), "error": scrub(error, 500), "failed_at": at})]
