"""Which revision the results database is at, and bringing it to the code's head.

:func:`check_schema` is cheap (one query, no Alembic import): the revisions this code knows are
listed here, and a test checks the list against the migrations. Worker processes call it at boot
(:mod:`gabay.middleware.schema_check`) and refuse to start on a schema older than the code.
The embedded SQLite database (no ``DATABASE_URL``) is upgraded automatically instead, since
nobody else shares or administers it; a configured database is upgraded only by
``gabay db upgrade``, so that a deploy migrates once and on purpose.

Upgrades take a lock first (a file lock beside the SQLite file, a PostgreSQL advisory lock), so
several processes upgrading at once migrate once.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from gabay.errors import SchemaOutdated, StoreUnavailable

#: Every revision of the schema, oldest first; the last one is the code's head.
REVISIONS = ("0001_initial", "0002_answer_key_version", "0003_exam_analytics", "0004_reports_digests")
HEAD_REVISION = REVISIONS[-1]
MIGRATIONS = Path(__file__).with_name("migrations")
#: Key of the PostgreSQL advisory lock held while migrating.
MIGRATION_LOCK = 0x6761626179  # "gabay"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the packaged migrations, on ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def script_head() -> str | None:
    """The head revision of the migration scripts (what :data:`HEAD_REVISION` must equal)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The database's revision; None for a database that was never migrated."""
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError as exc:
        raise StoreUnavailable(unavailable(exc)) from None


def check_schema(engine: Engine) -> str:
    """Return the revision if it is the code's head; else raise SchemaOutdated in one line."""
    current = current_revision(engine)
    if current == HEAD_REVISION:
        return current
    if current is not None and current not in REVISIONS:
        raise SchemaOutdated(f"the results database is at revision {current}, which this code does "
                             f"not know (it needs {HEAD_REVISION}); run a newer gabay")
    raise SchemaOutdated(f"the results database is at revision {current or 'none (empty)'}, this "
                         f"code needs {HEAD_REVISION}; run `gabay db upgrade`")


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Migrate to ``revision`` (under a lock) and return the revision reached."""
    try:
        with _migration_lock(engine), engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            command.upgrade(alembic_config(connection), revision)
    except DBAPIError as exc:
        raise StoreUnavailable(unavailable(exc)) from None
    return current_revision(engine)


def prepare_schema(engine: Engine, *, auto_upgrade: bool) -> str:
    """Check the schema; with ``auto_upgrade`` (the embedded SQLite) migrate an old one first."""
    try:
        return check_schema(engine)
    except SchemaOutdated:
        current = current_revision(engine)
        if not auto_upgrade or (current is not None and current not in REVISIONS):
            raise
    upgrade(engine)
    return check_schema(engine)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """A file lock beside an SQLite database (PostgreSQL locks inside the transaction)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def unavailable(exc: DBAPIError) -> str:
    """One line saying why the database failed, without the SQL or the parameters."""
    reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
    return f"the results database failed ({type(exc.orig).__name__}: {reason})"
