"""SQLite: a consistent copy through SQLite's online backup API, and back the same way.

The backup API copies the database page by page while workers keep writing (a write in between
restarts the copy of the pages it changed), so the copy is one consistent state of the file, WAL
included. Restoring writes the backup's pages into the target database the same way, replacing
whatever it held.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from gabay.errors import BackupFailed, RestoreRefused
from gabay.store.engine import SQLITE_BUSY_SECONDS


def copy_database(source: Path, destination: Path) -> None:
    """Copy the database ``source`` into the (new) file ``destination``; check the copy."""
    try:
        with contextlib.closing(sqlite3.connect(source, timeout=SQLITE_BUSY_SECONDS)) as reader, \
                contextlib.closing(sqlite3.connect(destination)) as writer:
            reader.backup(writer)
            # A rollback journal, not WAL: reading the copy later leaves no -wal/-shm files beside it.
            writer.execute("PRAGMA journal_mode=DELETE")
            check = writer.execute("PRAGMA quick_check").fetchone()
    except sqlite3.Error as exc:
        raise BackupFailed(f"the SQLite backup of {source} failed: {exc}") from None
    if check is None or check[0] != "ok":
        raise BackupFailed(f"the SQLite backup of {source} failed its integrity check")


def table_count(path: Path) -> int:
    """Tables in the database at ``path`` (0 when the file does not exist: an empty target)."""
    if not path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=SQLITE_BUSY_SECONDS)) as connection:
            row = connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
    except sqlite3.Error as exc:
        raise RestoreRefused(f"the target database {path} cannot be read: {exc}") from None
    return int(row[0])


def restore_database(backup_file: Path, target: Path) -> None:
    """Write the backup ``backup_file`` into the database ``target`` (made when missing)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.closing(sqlite3.connect(f"{backup_file.resolve().as_uri()}?mode=ro",
                                                uri=True)) as reader, \
                contextlib.closing(sqlite3.connect(target, timeout=SQLITE_BUSY_SECONDS)) as writer:
            reader.backup(writer)
    except sqlite3.Error as exc:
        raise BackupFailed(f"restoring {backup_file.name} into {target} failed: {exc}") from None
