"""The engine of the results store, built from the settings (never a module-level singleton).

``DATABASE_URL`` unset: an SQLite file in ``GABAY_DATA_DIR`` (beside the embedded Redis), so a
machine with nothing configured still keeps its results. ``postgresql://`` (and ``postgres://``)
URLs use psycopg 3 (``postgresql+psycopg://``). SQLite runs in WAL mode with ``BEGIN IMMEDIATE``
transactions, so that worker processes writing at once wait for each other instead of failing.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError

from gabay.errors import ConfigError
from gabay.settings import Settings

EMBEDDED_FILE = "results.sqlite3"
POSTGRES_NAMES = {"postgresql", "postgres", "postgresql+psycopg"}
SQLITE_NAMES = {"sqlite", "sqlite+pysqlite"}
#: Seconds an SQLite writer waits for another process's write, and a connection to PostgreSQL.
SQLITE_BUSY_SECONDS = 30
CONNECT_TIMEOUT = 5


def is_embedded(settings: Settings) -> bool:
    """True when no ``DATABASE_URL`` is set: the SQLite file under the data directory."""
    return settings.database_url is None


def database_url(settings: Settings) -> URL:
    """The SQLAlchemy URL for these settings (``postgresql://`` mapped to psycopg 3)."""
    if settings.database_url is None:
        return URL.create("sqlite", database=str(settings.gabay_data_dir / EMBEDDED_FILE))
    try:
        url = make_url(settings.database_url.get_secret_value())
    except ArgumentError:
        raise ConfigError("invalid configuration: DATABASE_URL: not a database URL") from None
    if url.drivername in POSTGRES_NAMES:
        return url.set(drivername="postgresql+psycopg")
    if url.drivername in SQLITE_NAMES:
        return url
    raise ConfigError(f"invalid configuration: DATABASE_URL: unsupported database {url.drivername!r}; "
                      "use postgresql:// or sqlite:///path")


def describe_url(url: URL) -> str:
    """The URL with its password masked, for the CLI and logs."""
    return url.render_as_string(hide_password=True)


def build_engine(settings: Settings) -> Engine:
    """An engine for the settings' database; connecting happens on first use."""
    url = database_url(settings)
    if url.get_backend_name() == "sqlite":
        return sqlite_engine(url)
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT})


def sqlite_engine(url: URL) -> Engine:
    """SQLite with WAL, foreign keys, and write transactions that take the lock up front."""
    if url.database and url.database != ":memory:":
        # On failure the first connection says so (StoreUnavailable), not the import.
        with contextlib.suppress(OSError):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, record: object) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
