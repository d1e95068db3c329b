"""A worker process refuses to start on an old results schema; the embedded SQLite migrates itself."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from gabay.middleware.schema_check import EXIT_CONFIGURATION, SchemaCheck
from gabay.settings import Settings
from gabay.store.engine import build_engine
from gabay.store.schema import HEAD_REVISION, REVISIONS, current_revision, upgrade
from tests.support.processes import WorkerProcess


def test_a_real_worker_refuses_to_start_on_an_old_schema(database_url: str, tmp_path: Path,
                                                          worker_env: dict[str, str],
                                                          store_settings: Callable[..., Settings]) -> None:
    engine = build_engine(store_settings())
    upgrade(engine, REVISIONS[0])
    engine.dispose()
    workers = WorkerProcess({**worker_env, "DATABASE_URL": database_url}, tmp_path / "workers.log",
                            processes=1, threads=1, modules=())

    code = workers.launch().wait(timeout=30)
    workers.stop()

    assert code == EXIT_CONFIGURATION, workers.log()
    expected = (f"gabay: the results database is at revision {REVISIONS[0]}, this code needs "
                f"{HEAD_REVISION}; run `gabay db upgrade`")
    assert [line for line in workers.log().splitlines() if expected in line], workers.log()
    assert "Worker process is ready" not in workers.log()


def test_the_embedded_database_is_migrated_at_boot(store_settings: Callable[..., Settings]) -> None:
    settings = store_settings(database_url=None)

    SchemaCheck(settings).before_worker_boot(None, None)  # type: ignore[arg-type]

    engine = build_engine(settings)
    assert current_revision(engine) == HEAD_REVISION
    engine.dispose()


def test_a_configured_old_schema_stops_the_boot_in_process(store_settings: Callable[..., Settings]) -> None:
    engine = build_engine(store_settings())
    upgrade(engine, REVISIONS[0])

    with pytest.raises(SystemExit) as stopped:
        SchemaCheck(store_settings()).before_worker_boot(None, None)  # type: ignore[arg-type]

    assert stopped.value.code == EXIT_CONFIGURATION
    assert current_revision(engine) == REVISIONS[0]  # not migrated behind the operator's back
    engine.dispose()


def test_a_database_that_is_down_at_boot_only_warns(down_url: str, store_settings: Callable[..., Settings],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gabay.middleware.schema_check"):
        SchemaCheck(store_settings(database_url=down_url)).before_worker_boot(None, None)  # type: ignore[arg-type]

    assert "the results database failed" in caplog.text and "starting anyway" in caplog.text
