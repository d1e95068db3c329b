"""Every results-store test runs twice: on an SQLite file and on a real PostgreSQL.

PostgreSQL is ``TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``,
trust authentication; not ``GABAY_``-prefixed, since tests/conftest.py clears those). The
session creates its own database ``gabay_test_<random>`` there, empties it (schema ``public``
dropped and made again) before each test, and drops it at the end. A PostgreSQL that does not
answer fails the tests with a clear message; nothing is skipped.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import make_url

from gabay.settings import Settings, load_settings
from gabay.store.results import ResultsStore
from gabay.store.schema import upgrade

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL",
                                    "postgresql://postgres@127.0.0.1:5432/postgres")
#: A PostgreSQL URL nothing listens on: a database that is down.
DOWN_POSTGRES_URL = "postgresql://postgres@127.0.0.1:1/gabay_down"


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at its end."""
    name = f"gabay_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(_libpq(POSTGRES_ADMIN_URL), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL does not answer at {POSTGRES_ADMIN_URL} "
                    f"({str(exc).strip().splitlines()[0]}); the results-store tests need a real "
                    "PostgreSQL (set TEST_POSTGRES_URL)", pytrace=False)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind: an SQLite file, or this session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    with psycopg.connect(_libpq(url), autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")
    return url


@pytest.fixture
def down_url(database_url: str, tmp_path: Path) -> str:
    """A database of the same kind that cannot be reached."""
    if database_url.startswith("sqlite"):
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("a file where the database's directory should be")
        return f"sqlite:///{blocker / 'results.sqlite3'}"
    return DOWN_POSTGRES_URL


@pytest.fixture
def store_settings(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Factory: settings on the test database (``**overrides`` win), outbox and data in tmp_path."""
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"database_url": database_url, "gabay_data_dir": tmp_path / "data",
                                  "email_outbox_dir": tmp_path / "outbox", **overrides}
        return load_settings(**values)

    return make


@pytest.fixture
def make_store() -> Iterator[Callable[[Settings], ResultsStore]]:
    """Factory of stores (engines disposed after the test)."""
    made: list[ResultsStore] = []

    def make(settings: Settings) -> ResultsStore:
        made.append(ResultsStore.from_settings(settings))
        return made[-1]

    yield make
    for store in made:
        store.dispose()


@pytest.fixture
def store(store_settings: Callable[..., Settings],
          make_store: Callable[[Settings], ResultsStore]) -> ResultsStore:
    """A results store on the test database, migrated to head."""
    results = make_store(store_settings())
    upgrade(results.engine)
    return results
