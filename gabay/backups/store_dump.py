"""The results store's part of a backup: which tool for which database, and its restore.

PostgreSQL is dumped with ``pg_dump`` (custom format, ``store.pgdump``) and restored with
``pg_restore``; SQLite is copied with its online backup API (``store.sqlite3``) and restored the
same way. A restore goes into an empty database only, unless ``force``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import URL, create_engine

from gabay.backups import postgres, sqlite
from gabay.backups.manifest import StorePart, describe_file
from gabay.errors import BackupFailed, RestoreRefused, StoreUnavailable
from gabay.store.engine import describe_url
from gabay.store.schema import current_revision

POSTGRES_FILE = "store.pgdump"
SQLITE_FILE = "store.sqlite3"


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise RestoreRefused("an in-memory SQLite database has nothing to back up or restore into")
    return Path(url.database)


def revision_of(url: URL) -> str | None:
    """The database's Alembic revision (recorded in the manifest)."""
    engine = create_engine(url, connect_args={} if is_sqlite(url) else {"connect_timeout": 5})
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def dump_store(url: URL, directory: Path, timeout: float) -> StorePart:
    """Write the store's dump into ``directory``; BackupFailed (one line) when it cannot."""
    if is_sqlite(url):
        source = sqlite_path(url)
        if not source.is_file():  # checked first: reading the revision would create the file
            raise BackupFailed(f"the results database {source} does not exist (nothing stored yet?)")
        revision = _revision_or_fail(url)
        sqlite.copy_database(source, directory / SQLITE_FILE)
        size, digest = describe_file(directory / SQLITE_FILE)
        return StorePart(file=SQLITE_FILE, bytes=size, sha256=digest, kind="sqlite", revision=revision)
    postgres.dump(url, directory / POSTGRES_FILE, timeout)
    revision = _revision_or_fail(url)
    size, digest = describe_file(directory / POSTGRES_FILE)
    return StorePart(file=POSTGRES_FILE, bytes=size, sha256=digest, kind="postgresql", revision=revision)


def _revision_or_fail(url: URL) -> str | None:
    try:
        return revision_of(url)
    except StoreUnavailable as exc:
        raise BackupFailed(str(exc)) from None


def check_store_target(part: StorePart, url: URL, *, force: bool) -> None:
    """Refuse (one line) a target of the other kind, or one that is not empty without ``force``."""
    kind = "sqlite" if is_sqlite(url) else "postgresql"
    if kind != part.kind:
        raise RestoreRefused(f"the backup holds a {part.kind} dump and the target database "
                             f"{describe_url(url)} is {kind}")
    tables = sqlite.table_count(sqlite_path(url)) if kind == "sqlite" else postgres.user_tables(url)
    if tables and not force:
        raise RestoreRefused(f"the target database {describe_url(url)} is not empty ({tables} tables); "
                             "restore into an empty database, or pass --force to overwrite it")


def restore_store(part: StorePart, backup_dir: Path, url: URL, timeout: float, *, force: bool) -> None:
    """Restore the store's dump into the database at ``url`` (checked with check_store_target)."""
    if part.kind == "sqlite":
        sqlite.restore_database(backup_dir / part.file, sqlite_path(url))
    else:
        postgres.restore(backup_dir / part.file, url, timeout, replace=force)
