"""Backups of the results store: back up, destroy, restore, and every row is there again.

The store runs on a real PostgreSQL (a database this test creates and drops) and on an SQLite
file; Redis is a redis-server of the test's own (stopped by pid), so that BGSAVE never touches the
shared one. Retention is plain arithmetic on fixed dates.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, make_url, select, table, text

from gabay.alerts.service import build_alerting
from gabay.backups.directory import BackupDirectory, backup_id
from gabay.backups.manifest import MANIFEST
from gabay.backups.restore import restore_backup
from gabay.backups.retention import kept_ids
from gabay.backups.run import run_backup
from gabay.cli import main
from gabay.errors import BackupDamaged, BackupFailed, RestoreRefused
from gabay.jobs import LLMCall
from gabay.schedules.config import load_schedules
from gabay.settings import Settings, load_settings
from gabay.store.engine import database_url
from gabay.store.identity import person_id
from gabay.store.records import ExamFacts, QuestionFacts, SubmissionFacts
from gabay.store.results import ResultsStore
from gabay.store.schema import upgrade
from tests.chaos.redis_server import RedisServer, server_binary
from tests.fakes import webhook_server
from tests.fakes.webhook_server import FakeReceiver
from tests.support.polling import wait_for

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DOWN_POSTGRES_URL = "postgresql://postgres@127.0.0.1:1/gabay_down"
UTC = dt.UTC


# -- fixtures ---------------------------------------------------------------------------------------

def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Postgres:
    """Creates and drops one database of the test's own on the real PostgreSQL."""

    def __init__(self) -> None:
        self.name = f"gabay_backup_{secrets.token_hex(4)}"
        try:
            self.admin = psycopg.connect(_libpq(POSTGRES_ADMIN_URL), autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            pytest.fail(f"PostgreSQL does not answer at {POSTGRES_ADMIN_URL} ({exc}); the backup "
                        "tests need a real PostgreSQL (set TEST_POSTGRES_URL)", pytrace=False)

    @property
    def url(self) -> str:
        return make_url(POSTGRES_ADMIN_URL).set(database=self.name).render_as_string(hide_password=False)

    def create(self) -> None:
        self.admin.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    database = Postgres()
    database.create()
    try:
        yield database
    finally:
        database.drop()
        database.admin.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test (no append-only file: the RDB is what a backup copies)."""
    server = RedisServer(tmp_path / "redis", appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture
def hook() -> Iterator[FakeReceiver]:
    with webhook_server.webhook() as receiver:
        yield receiver


def backup_settings(tmp_path: Path, database: str, server: RedisServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": database, "redis_url": server.url,
                              "gabay_data_dir": tmp_path / "data", "schedule_overrides": {}, **overrides}
    return load_settings(**values)


def fill_store(settings: Settings) -> None:
    """Rows in every table the pipelines write: exams, submissions, questions, the ledger, analytics."""
    store = ResultsStore.from_settings(settings)
    upgrade(store.engine)
    try:
        for form in ("form-bio-7", "form-chem-2"):
            store.record_exam(ExamFacts(form_id=form, title=f"Quiz {form}", subject="Science",
                                        teacher_id=person_id("reyes@school.example"),
                                        answer_key_version="k-1"))
            for n in range(3):
                store.record_submission(SubmissionFacts(
                    response_id=f"{form}-r{n}", form_id=form, student_id=person_id(f"s{n}@student.example"),
                    submitted_at=dt.datetime(2026, 11, 30, 8, n, tzinfo=UTC), language="en",
                    answers=[{"question_id": "q1", "type": "short_answer", "answer": "Oxygen"}],
                    grades=[{"question_id": "q1", "outcome": "right", "points": 1.0, "max_points": 1.0}],
                    earned=1.0, possible=1.0, pending_points=0.0, percent=100, feedback_summary="Good.",
                    feedback_source="offline", job_id=f"fb-{form}-{n}", answer_key_version="k-1",
                    email_via="outbox", outbox_file=f"{form}-{n}.eml"))
            store.record_analytics(form, {"summary": {"count": 3}}, 3)
        store.record_question_result(QuestionFacts(request_id="req-1", document_id="doc-1", count=2,
                                                   job_id="q-1", accepted=[{"question": {"id": 1}}]))
        store.record_calls("q-1", [LLMCall(stage="generation", provider="offline", model="m",
                                           prompt_tokens=10 + i, completion_tokens=5, cost_usd=0.0)
                                   for i in range(3)])
    finally:
        store.dispose()


def every_row(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (alembic_version too), in a stable order."""
    engine = create_engine(database_url(settings))
    try:
        with engine.connect() as connection:
            names = inspect(connection).get_table_names()
            return {name: sorted((tuple(row) for row in connection.execute(select(text("*")).select_from(
                table(name)))), key=repr) for name in names}
    finally:
        engine.dispose()


# -- round trips ----------------------------------------------------------------------------------

def test_postgresql_backed_up_dropped_and_restored_has_every_row(
        tmp_path: Path, postgres: Postgres, own_redis: RedisServer) -> None:
    settings = backup_settings(tmp_path, postgres.url, own_redis)
    fill_store(settings)
    before = every_row(settings)
    assert len(before["submissions"]) == 6 and len(before["cost_ledger"]) == 3

    result = run_backup(settings, own_redis.client())
    assert result.backup.manifest is not None and result.backup.manifest.store is not None
    assert result.backup.manifest.store.kind == "postgresql"
    assert (result.backup.path / "store.pgdump").read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format

    postgres.drop()  # the database is gone
    postgres.create()  # a new, empty one
    restored = restore_backup(BackupDirectory(settings.backups_dir).entry(result.backup.id),
                              database=database_url(settings), client=None, timeout=60)

    assert restored.store == "postgresql"
    assert every_row(settings) == before
    with pytest.raises(RestoreRefused, match=r"is not empty \(\d+ tables\).*--force"):
        restore_backup(result.backup, database=database_url(settings), client=None, timeout=60)

    engine = create_engine(database_url(settings))  # rows changed since: --force puts them back
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM cost_ledger"))
        connection.execute(text("UPDATE submissions SET percent = 0"))
    engine.dispose()
    restore_backup(result.backup, database=database_url(settings), client=None, timeout=60, force=True)
    assert every_row(settings) == before


def test_sqlite_backed_up_deleted_and_restored_has_every_row(tmp_path: Path, own_redis: RedisServer) -> None:
    path = tmp_path / "store" / "results.sqlite3"
    settings = backup_settings(tmp_path, f"sqlite:///{path}", own_redis)
    fill_store(settings)
    before = every_row(settings)

    result = run_backup(settings, own_redis.client())
    for leftover in path.parent.glob("results.sqlite3*"):  # the file and its WAL are gone
        leftover.unlink()
    restore_backup(result.backup, database=database_url(settings), client=None, timeout=60)

    assert every_row(settings) == before
    assert not list(result.backup.path.glob("*-wal"))  # reading the backup left nothing beside it
    store = ResultsStore.from_settings(settings)  # and the store works on it as before
    try:
        assert store.submission("form-bio-7-r2") is not None
    finally:
        store.dispose()


def test_the_cli_lists_runs_and_restores_and_refuses_a_target_that_is_not_empty(
        tmp_path: Path, own_redis: RedisServer) -> None:
    path = tmp_path / "results.sqlite3"
    env = {"DATABASE_URL": f"sqlite:///{path}", "REDIS_URL": own_redis.url,
           "BACKUP_DIR": str(tmp_path / "backups"), "GABAY_DATA_DIR": str(tmp_path / "data")}
    settings = backup_settings(tmp_path, env["DATABASE_URL"], own_redis, backup_dir=tmp_path / "backups")
    fill_store(settings)
    own_redis.client().set("gabay:job:j1", json.dumps({"id": "j1"}))
    runner = CliRunner()

    ran = runner.invoke(main, ["backup", "run"], env=env)
    assert ran.exit_code == 0, ran.output
    [entry] = BackupDirectory(tmp_path / "backups").entries()
    listed = runner.invoke(main, ["backup", "list"], env=env)
    assert f"{entry.id}  ok" in listed.output and "redis: db 0, 1 keys" in listed.output
    as_json = json.loads(runner.invoke(main, ["backup", "list", "--json"], env=env).output)
    [listed_entry] = as_json["backups"]
    assert (listed_entry["id"], listed_entry["good"]) == (entry.id, True)
    assert listed_entry["manifest"]["store"]["sha256"] == entry.manifest.store.sha256  # type: ignore[union-attr]

    refused = runner.invoke(main, ["backup", "restore", entry.id], env=env)
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == [
        f"gabay: the target database sqlite:///{path} is not empty "
        f"({len(every_row(settings))} tables); restore into an empty database, or pass --force to "
        "overwrite it"]

    path.unlink()
    refused = runner.invoke(main, ["backup", "restore", entry.id], env=env)  # Redis still has its key
    assert refused.exit_code == 1 and "target Redis database 0 is not empty (1 keys)" in refused.output
    assert not path.exists()  # nothing was restored: both targets are checked first

    forced = runner.invoke(main, ["backup", "restore", entry.id, "--force"], env=env)
    assert forced.exit_code == 0, forced.output
    assert "redis restored: 1 keys" in forced.output and path.exists()


# -- damaged and failed backups -------------------------------------------------------------------

def test_a_damaged_backup_is_listed_as_damaged_and_not_restored(tmp_path: Path,
                                                                own_redis: RedisServer) -> None:
    settings = backup_settings(tmp_path, f"sqlite:///{tmp_path / 'results.sqlite3'}", own_redis)
    fill_store(settings)
    result = run_backup(settings, own_redis.client())
    dump = result.backup.path / "store.sqlite3"
    data = bytearray(dump.read_bytes())
    data[-1] ^= 0xFF
    dump.write_bytes(bytes(data))

    [entry] = BackupDirectory(settings.backups_dir).entries()
    assert not entry.good and entry.problem == (f"backup {entry.id} is damaged: store.sqlite3 does not "
                                                "match its checksum")
    (tmp_path / "results.sqlite3").unlink()
    with pytest.raises(BackupDamaged, match="does not match its checksum"):
        restore_backup(entry, database=database_url(settings), client=None, timeout=60)
    assert not (tmp_path / "results.sqlite3").exists()

    (result.backup.path / MANIFEST).unlink()
    [entry] = BackupDirectory(settings.backups_dir).entries()
    assert entry.problem == f"backup {entry.id} is incomplete: it has no manifest.json"


def test_pg_dump_failing_fails_the_backup_fires_the_alert_and_lists_nothing(
        tmp_path: Path, own_redis: RedisServer, hook: FakeReceiver) -> None:
    client = own_redis.client()
    settings = backup_settings(tmp_path, DOWN_POSTGRES_URL, own_redis, alert_webhook_url=hook.url,
                               alert_http_retries=0, alert_disabled_rules="")

    with pytest.raises(BackupFailed) as failed:
        run_backup(settings, client)

    line = str(failed.value)
    assert line.startswith("pg_dump failed (exit code 1): ") and "\n" not in line, line
    assert BackupDirectory(settings.backups_dir).entries() == []
    assert [p.name for p in settings.backups_dir.iterdir()] == [".lock"]  # no partial directory
    alerts = build_alerting(settings, client)
    alerts.tick()
    [body] = [r["json"] for r in hook.accepted() if r["json"]["rule"] == "backup_failed"]
    assert (body["event"], body["severity"], body["subject"]) == ("firing", "critical", "backups")
    assert body["summary"] == f"the last backup failed: {line}"


def test_bgsave_failing_fails_the_backup_keeps_no_partial_one_and_a_good_backup_resolves_it(
        tmp_path: Path, own_redis: RedisServer, hook: FakeReceiver) -> None:
    client = own_redis.client()
    client.set("gabay:job:j1", "{}")
    settings = backup_settings(tmp_path, f"sqlite:///{tmp_path / 'results.sqlite3'}", own_redis,
                               alert_webhook_url=hook.url, alert_http_retries=0, alert_disabled_rules="")
    fill_store(settings)
    blocker = own_redis.directory / "dump.rdb"
    blocker.mkdir()  # Redis's rename of its temporary RDB onto a directory fails: a real BGSAVE error
    alerts = build_alerting(settings, client)

    with pytest.raises(BackupFailed, match=r"^Redis's BGSAVE failed \(rdb_last_bgsave_status: err\)"):
        run_backup(settings, client)
    assert BackupDirectory(settings.backups_dir).entries() == []
    assert not list(settings.backups_dir.glob(".partial-*"))  # the store's part went with it
    alerts.tick()
    assert [e for e in hook.events() if e[1] == "backup_failed"] == [("firing", "backup_failed")]

    blocker.rmdir()
    result = run_backup(settings, client)
    assert [e.id for e in BackupDirectory(settings.backups_dir).entries() if e.good] == [result.backup.id]
    alerts.tick()
    assert [e for e in hook.events() if e[1] == "backup_failed"] == [("firing", "backup_failed"),
                                                                     ("resolved", "backup_failed")]


@pytest.fixture
def redis_elsewhere(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server whose files this host cannot see, as if it ran on another machine.

    It runs in a mount namespace of its own with a tmpfs on its directory: from here that
    directory is the empty mount point. A stale ``dump.rdb`` of the same name lies in it on this
    side, as a Redis of this host could have left there.
    """
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    (directory / "dump.rdb").write_bytes(b"REDIS0009 an old snapshot of another Redis")
    os.utime(directory / "dump.rdb", (1_700_000_000, 1_700_000_000))
    server = RedisServer(directory, appendonly=False)
    command = (f"mount -t tmpfs tmpfs {directory} && exec {server_binary()} --port {server.port} "
               f"--bind 127.0.0.1 --save '' --appendonly no --dir {directory}")
    server.process = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", command],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: server._answers(server.client()) or server.process.poll() is not None,  # type: ignore[union-attr]
                 timeout=10, message="the redis-server in its own mount namespace")
        if server.process.poll() is not None:
            pytest.fail("could not start a redis-server in a mount namespace of its own (unshare "
                        f"--mount needs root): {server.process.stderr.read().decode()[:200]}",  # type: ignore[union-attr]
                        pytrace=False)
        yield server
    finally:
        server.stop()


def test_a_redis_whose_file_this_host_cannot_read_fails_in_one_line(
        tmp_path: Path, redis_elsewhere: RedisServer) -> None:
    client = redis_elsewhere.client()
    client.set("gabay:job:j1", "{}")
    settings = backup_settings(tmp_path, f"sqlite:///{tmp_path / 'results.sqlite3'}", redis_elsewhere)
    fill_store(settings)

    with pytest.raises(BackupFailed) as failed:
        run_backup(settings, client)

    rdb = redis_elsewhere.directory / "dump.rdb"
    assert str(failed.value) == (
        f"Redis's snapshot {rdb} is not readable on this host (Redis runs on another "
        "machine?); run the backup where Redis runs, or set BACKUP_REDIS=false and back Redis up there")
    assert rdb.read_bytes().startswith(b"REDIS0009 an old")  # the stale file here was not taken
    assert BackupDirectory(settings.backups_dir).entries() == []

    store_only = backup_settings(tmp_path, f"sqlite:///{tmp_path / 'results.sqlite3'}", redis_elsewhere,
                                 backup_redis=False)
    result = run_backup(store_only, client)
    assert result.backup.manifest is not None and result.backup.manifest.redis is None


# -- retention and the schedule -------------------------------------------------------------------

def _at(day: str, hour: int = 1) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def test_retention_keeps_the_newest_of_the_last_days_and_weeks() -> None:
    # Two backups a day from Mon 2026-11-02 to Thu 2026-12-03 (ISO weeks 45 to 49).
    days = [dt.date(2026, 11, 2) + dt.timedelta(days=n) for n in range(32)]
    backups = [(backup_id(_at(d.isoformat(), hour)), _at(d.isoformat(), hour))
               for d in days for hour in (1, 13)]

    kept = kept_ids(backups, keep_daily=3, keep_weekly=3)

    assert sorted(kept) == [
        "20261122T130000Z",  # week 47: its newest, Sunday 22nd afternoon
        "20261129T130000Z",  # week 48: Sunday 29th
        "20261201T130000Z", "20261202T130000Z",  # the last three days; the 3rd is week 49's too
        "20261203T130000Z",
    ]
    assert kept_ids(backups, keep_daily=1, keep_weekly=0) == {"20261203T130000Z"}
    # Weeks without a backup use no slot: the three weeks kept are the three that have one.
    sparse = [(backup_id(_at(d)), _at(d)) for d in ("2026-10-05", "2026-11-02", "2026-11-30", "2026-12-01")]
    assert kept_ids(sparse, keep_daily=1, keep_weekly=3) == {"20261201T010000Z", "20261102T010000Z",
                                                             "20261005T010000Z"}


def test_retention_runs_after_a_good_backup_and_removes_what_the_policy_drops(
        tmp_path: Path, own_redis: RedisServer) -> None:
    settings = backup_settings(tmp_path, f"sqlite:///{tmp_path / 'results.sqlite3'}", own_redis,
                               backup_keep_daily=2, backup_keep_weekly=0, backup_redis=False)
    fill_store(settings)
    first = run_backup(settings, own_redis.client()).backup
    old = settings.backups_dir / "20261101T013000Z"  # an old backup, renamed from the first
    first.path.rename(old)
    older = settings.backups_dir / "20261025T013000Z"
    older.mkdir()  # no manifest: it never counts as a day's backup
    (settings.backups_dir / ".partial-20261203T000000Z").mkdir()  # left by a killed run

    result = run_backup(settings, own_redis.client())

    assert sorted(e.id for e in result.removed) == ["20261025T013000Z"]
    assert [e.id for e in BackupDirectory(settings.backups_dir).entries(check=False)] == [
        "20261101T013000Z", result.backup.id]
    assert not list(settings.backups_dir.glob(".partial-*"))


def test_the_nightly_backup_is_a_default_schedule_that_a_file_or_variable_can_change(tmp_path: Path) -> None:
    defaults = load_settings(schedules_file=None, schedule_overrides={}, schedule_defaults=True)
    [nightly] = [s for s in load_schedules(defaults) if s.name == "nightly-backup"]
    assert (nightly.actor, nightly.cron, nightly.misfire, nightly.enabled) == ("run_backup", "30 1 * * *",
                                                                               "run_once", True)
    off = load_settings(schedules_file=None, schedule_defaults=True,
                        schedule_overrides={"SCHEDULES_NIGHTLY_BACKUP_ENABLED": "false"})
    assert not next(s for s in load_schedules(off) if s.name == "nightly-backup").enabled
    path = tmp_path / "schedules.toml"
    path.write_text('[schedules.nightly-backup]\ncron = "0 3 * * *"\nactor = "run_backup"\n')
    mine = load_settings(schedules_file=path, schedule_overrides={}, schedule_defaults=True)
    assert [s.cron for s in load_schedules(mine) if s.name == "nightly-backup"] == ["0 3 * * *"]
    without = load_settings(schedules_file=None, schedule_overrides={}, schedule_defaults=False)
    assert load_schedules(without) == []
