"""One backup run: the store, then Redis, the manifest, retention; a failure raises the alert.

Used by the ``run_backup`` actor (queue ``backups``, one at a time cluster-wide) and by
``gabay backup run``. Every failure, whatever failed (the lock, pg_dump, the SQLite copy,
BGSAVE, the copy of the RDB file, the disk), removes the partial directory, is reported to the
``backup_failed`` alert rule and raises BackupFailed in one line (a bug is reported too, and keeps
its traceback); the next good backup resolves the alert. Retention runs only after a good
backup, so a failing night never removes old ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
from dataclasses import dataclass

import redis

import gabay
from gabay.alerts.backup_failed import report_backup_failed, report_backup_succeeded
from gabay.backups import redis_snapshot
from gabay.backups.directory import Attempt, BackupDirectory, BackupEntry, backup_id
from gabay.backups.manifest import Manifest
from gabay.backups.retention import apply_retention
from gabay.backups.store_dump import dump_store
from gabay.errors import BackupFailed, GabayError
from gabay.settings import Settings
from gabay.store.engine import database_url

logger = logging.getLogger(__name__)
#: What a backup meets in operation (a tool, the disk, Redis); anything else is a bug.
EXPECTED_FAILURES = (GabayError, OSError, redis.RedisError, subprocess.SubprocessError)


@dataclass(frozen=True)
class BackupResult:
    """The backup written and the old ones retention removed."""

    backup: BackupEntry
    removed: list[BackupEntry]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_backup(settings: Settings, client: redis.Redis) -> BackupResult:
    """Back up the results store (and Redis, unless ``BACKUP_REDIS=false``) into ``BACKUP_DIR``."""
    directory = BackupDirectory(settings.backups_dir)
    attempt_id = backup_id(_now())
    try:
        with directory.locked(settings.backup_timeout):
            directory.remove_partials()
            attempt = directory.start(_now())
            attempt_id = attempt.id
            result = _write(settings, client, directory, attempt)
    except Exception as exc:  # every failure raises the alert; a bug keeps its traceback
        error = one_line(exc)
        logger.error("Backup %s failed: %s", attempt_id, error)
        _report_failure(client, settings, error, attempt_id)
        if isinstance(exc, EXPECTED_FAILURES):
            raise BackupFailed(error) from None
        raise
    try:
        report_backup_succeeded(client, settings.keys)
    except redis.RedisError as exc:
        logger.warning("Backup %s written, but its alert could not be resolved (Redis: %s)",
                       result.backup.id, type(exc).__name__)
    return result


def _write(settings: Settings, client: redis.Redis, directory: BackupDirectory,
           attempt: Attempt) -> BackupResult:
    try:
        store = dump_store(database_url(settings), attempt.path, settings.backup_timeout)
        snapshot = (redis_snapshot.snapshot(client, attempt.path, settings.backup_timeout)
                    if settings.backup_redis else None)
        manifest = Manifest(id=attempt.id, started_at=attempt.started_at, finished_at=_now(),
                            gabay_version=gabay.__version__, store=store, redis=snapshot)
        backup = directory.finish(attempt, manifest)
    except BaseException:
        directory.discard(attempt)
        raise
    try:
        removed = apply_retention(directory, settings.backup_keep_daily, settings.backup_keep_weekly)
    except OSError as exc:
        raise BackupFailed(f"backup {backup.id} was written, but retention could not remove an old "
                           f"one: {one_line(exc)}") from None
    logger.info("Backup %s written to %s (store: %s, %s; redis: %s); retention removed %d",
                backup.id, backup.path, store.kind, human_size(store.bytes),
                f"{snapshot.keys} keys, {human_size(snapshot.bytes)}" if snapshot else "not included",
                len(removed))
    return BackupResult(backup, removed)


def _report_failure(client: redis.Redis, settings: Settings, error: str, attempt_id: str) -> None:
    try:
        report_backup_failed(client, settings.keys, error, attempt_id)
    except redis.RedisError as exc:  # then the redis_unreachable rule is the alert
        logger.error("The failed backup could not be reported to the alerts (Redis: %s)",
                     type(exc).__name__)


def one_line(exc: BaseException) -> str:
    """The error as one line: gabay's own message, else the exception's class and message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, GabayError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def human_size(count: int) -> str:
    """``1.2 MB``: sizes for the log and ``gabay backup list``."""
    if count < 1000:
        return f"{count} B"
    size, unit = float(count), "B"
    for unit in ("kB", "MB", "GB"):  # noqa: B007 (the unit the loop stops at is the answer)
        size /= 1000
        if size < 1000:
            break
    return f"{size:.1f} {unit}"
