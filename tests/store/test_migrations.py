"""Migrations from empty and from the previous revision, and the schema check that guards workers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from gabay.errors import ConfigError, SchemaOutdated, StoreUnavailable
from gabay.settings import Settings
from gabay.store.engine import build_engine, database_url, describe_url
from gabay.store.results import ResultsStore
from gabay.store.schema import (
    HEAD_REVISION,
    REVISIONS,
    alembic_config,
    check_schema,
    current_revision,
    prepare_schema,
    upgrade,
)
from gabay.store.tables import Base


def test_the_known_revisions_are_the_migration_scripts_in_order() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    history = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    assert tuple(history) == REVISIONS
    assert scripts.get_current_head() == HEAD_REVISION


def test_migrating_an_empty_database_reaches_head_and_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert current_revision(engine) is None
        assert upgrade(engine) == HEAD_REVISION
        assert check_schema(engine) == HEAD_REVISION
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == []
        assert upgrade(engine) == HEAD_REVISION  # a second upgrade changes nothing
    finally:
        engine.dispose()


def test_upgrading_from_the_previous_revision_keeps_the_rows(
        store_settings: Callable[..., Settings]) -> None:
    engine = build_engine(store_settings())
    try:
        assert upgrade(engine, REVISIONS[-2]) == REVISIONS[-2]
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO exams (form_id, title, subject, answer_key_version, updated_at) "
                "VALUES ('form-1', 'Quiz', 'Biology', 'k-1', :at)"), {"at": dt.datetime.now(dt.UTC)})
            connection.execute(text(
                "INSERT INTO submissions (response_id, exam_id, student_id, submitted_at, language, "
                "grades, earned, possible, pending_points, feedback_source, email_state, job_id, "
                "recorded_at) VALUES ('resp-old', 1, 'st-1', :at, 'en', '[]', 1, 2, 0, 'offline', "
                "'sent', 'fb-1', :at)"), {"at": dt.datetime(2026, 1, 5, tzinfo=dt.UTC)})

        with pytest.raises(SchemaOutdated) as refused:
            check_schema(engine)
        assert str(refused.value) == (f"the results database is at revision {REVISIONS[-2]}, this code "
                                      f"needs {HEAD_REVISION}; run `gabay db upgrade`")

        assert upgrade(engine) == HEAD_REVISION
        store = ResultsStore(engine)
        row = store.submission("resp-old")
        assert row is not None and row["form_id"] == "form-1" and row["earned"] == 1
        assert row["answer_key_version"] is None  # the column revision 0002 added
    finally:
        engine.dispose()


def test_the_check_refuses_an_empty_or_unknown_schema(store_settings: Callable[..., Settings]) -> None:
    engine = build_engine(store_settings())
    try:
        with pytest.raises(SchemaOutdated, match=r"at revision none \(empty\), this code needs"):
            check_schema(engine)
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
        with pytest.raises(SchemaOutdated, match="0099_future, which this code does not know"):
            prepare_schema(engine, auto_upgrade=True)  # never migrated "down" by itself
    finally:
        engine.dispose()


def test_a_configured_database_is_not_migrated_by_the_store(
        store_settings: Callable[..., Settings], make_store: Callable[[Settings], ResultsStore]) -> None:
    store = make_store(store_settings())
    upgrade(store.engine, REVISIONS[0])

    with pytest.raises(SchemaOutdated, match="run `gabay db upgrade`"):
        store.submission("resp-1")
    assert current_revision(store.engine) == REVISIONS[0]


def test_the_embedded_sqlite_file_migrates_itself(store_settings: Callable[..., Settings],
                                                   make_store: Callable[[Settings], ResultsStore]) -> None:
    settings = store_settings(database_url=None)
    store = make_store(settings)
    assert store.auto_upgrade
    assert store.engine.url.database == str(settings.gabay_data_dir / "results.sqlite3")

    assert store.submission("resp-1") is None
    assert current_revision(store.engine) == HEAD_REVISION


def test_a_database_that_does_not_answer_is_one_clear_error(down_url: str,
                                                             store_settings: Callable[..., Settings]) -> None:
    engine = build_engine(store_settings(database_url=down_url))
    try:
        with pytest.raises(StoreUnavailable) as failed:
            check_schema(engine)
    finally:
        engine.dispose()
    message = str(failed.value)
    assert message.startswith("the results database failed (OperationalError: ") and "\n" not in message


@pytest.mark.parametrize(("given", "driver"), [
    ("postgresql://gabay:s3cret@db.internal:5432/gabay", "postgresql+psycopg"),
    ("postgres://gabay:s3cret@db.internal/gabay", "postgresql+psycopg"),
    ("postgresql+psycopg://gabay:s3cret@db.internal/gabay", "postgresql+psycopg"),
])
def test_postgresql_urls_use_psycopg_3_and_never_show_the_password(
        given: str, driver: str, store_settings: Callable[..., Settings]) -> None:
    url = database_url(store_settings(database_url=given))

    assert url.drivername == driver and url.password == "s3cret"
    assert "s3cret" not in describe_url(url) and "***" in describe_url(url)


def test_an_unsupported_database_url_is_a_configuration_error(
        store_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL: must be a postgresql://"):
        store_settings(database_url="mysql://root@localhost/gabay")
