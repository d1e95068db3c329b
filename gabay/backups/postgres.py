"""PostgreSQL: ``pg_dump`` in its custom format, and ``pg_restore`` into an empty database.

The tools are PostgreSQL's own, found on ``PATH`` or else in ``/usr/lib/postgresql/<version>/bin``
(the newest version: pg_dump must not be older than the server). The password never goes on a
command line (``ps`` shows those): it is passed in ``PGPASSWORD``; ``--no-password`` makes a tool
fail instead of prompting. A tool's failure becomes one line: its exit code and its last message.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import URL, create_engine, text
from sqlalchemy.exc import DBAPIError

from gabay.errors import BackupFailed, RestoreRefused
from gabay.store.schema import unavailable

TOOL_DIRS = "/usr/lib/postgresql/*/bin"


def find_tool(name: str) -> str:
    """The path of ``pg_dump`` / ``pg_restore``; BackupFailed when neither place has it."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"{TOOL_DIRS}/{name}"), key=_version_of)
    if candidates:
        return candidates[-1]
    raise BackupFailed(f"{name} was not found on PATH or in {TOOL_DIRS}; install the PostgreSQL "
                       "client tools (the package postgresql-client)")


def _version_of(path: str) -> tuple[int, ...]:
    number = Path(path).parent.parent.name
    return tuple(int(p) for p in number.split(".") if p.isdigit())


def libpq_target(url: URL) -> tuple[str, dict[str, str]]:
    """``(connection URI without the password, environment)`` for a PostgreSQL tool."""
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return uri, env


def run_tool(argv: list[str], env: dict[str, str], timeout: float, action: str) -> None:
    """Run a PostgreSQL tool; BackupFailed with its last message when it fails or times out."""
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise BackupFailed(f"{action} did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise BackupFailed(f"{action} could not start ({argv[0]}: {exc.strerror or exc})") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        message = lines[-1] if lines else "no message"
        raise BackupFailed(f"{action} failed (exit code {done.returncode}): {message[:300]}")


def dump(url: URL, destination: Path, timeout: float) -> None:
    """``pg_dump --format=custom`` of the database at ``url`` into ``destination``."""
    uri, env = libpq_target(url)
    run_tool([find_tool("pg_dump"), "--format=custom", "--no-password", "--file", str(destination),
              "--dbname", uri], env, timeout, "pg_dump")


def user_tables(url: URL) -> int:
    """How many tables the database has outside PostgreSQL's own schemas (0: empty)."""
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")).scalar() or 0)
    except DBAPIError as exc:
        raise RestoreRefused(unavailable(exc)) from None
    finally:
        engine.dispose()


def restore(dump_file: Path, url: URL, timeout: float, *, replace: bool) -> None:
    """``pg_restore`` into the database at ``url``, in one transaction (all or nothing).

    ``replace``: drop the dump's objects first (``--clean --if-exists``), for ``--force``.
    """
    uri, env = libpq_target(url)
    argv = [find_tool("pg_restore"), "--no-password", "--no-owner", "--single-transaction",
            "--exit-on-error", "--dbname", uri]
    if replace:
        argv += ["--clean", "--if-exists"]
    run_tool([*argv, str(dump_file)], env, timeout, "pg_restore")
