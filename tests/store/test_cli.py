"""``gabay db`` and ``gabay data``: migrations, forgetting a student everywhere, retention."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from gabay.cli import main
from gabay.feedback.pipeline import FeedbackContext, process
from gabay.feedback.submission import job_id_for
from gabay.settings import Settings
from gabay.store.engine import build_engine
from gabay.store.identity import person_id
from gabay.store.results import ResultsStore
from gabay.store.schema import HEAD_REVISION, REVISIONS, current_revision, upgrade
from tests.support.feedback_samples import sample
from tests.support.processes import ROOT

JOSE = "jose.delacruz@student.example"


def run(args: list[str], **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_db_upgrade_and_current(database_url: str, store_settings: Callable[..., Settings]) -> None:
    code, out = run(["db", "current"], DATABASE_URL=database_url)
    assert code == 0 and f"revision: none (empty); code needs {HEAD_REVISION} (run `gabay db upgrade`)" in out

    engine = build_engine(store_settings())
    upgrade(engine, REVISIONS[0])
    code, out = run(["db", "current"], DATABASE_URL=database_url)
    assert f"revision: {REVISIONS[0]}; code needs {HEAD_REVISION} (run `gabay db upgrade`)" in out

    process_ = subprocess.run([sys.executable, "-m", "gabay.cli", "db", "upgrade"], cwd=ROOT,
                              env={**os.environ, "DATABASE_URL": database_url},
                              capture_output=True, text=True, timeout=60)
    assert process_.returncode == 0, process_.stderr
    assert f"upgraded from {REVISIONS[0]} to {HEAD_REVISION}" in process_.stdout
    assert current_revision(engine) == HEAD_REVISION
    engine.dispose()

    code, out = run(["db", "upgrade"], DATABASE_URL=database_url)
    assert code == 0 and f"already at revision {HEAD_REVISION}" in out
    code, out = run(["db", "current"], DATABASE_URL=database_url)
    assert f"revision: {HEAD_REVISION}; code needs {HEAD_REVISION} (up to date)" in out


def test_forget_a_student_in_the_store_redis_and_the_outbox(
        redis_client: redis.Redis, store: ResultsStore, store_settings: Callable[..., Settings],
        database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = store_settings()
    ctx = FeedbackContext.build(settings, redis_client, results=store)
    for name in ("mixed-score", "all-wrong", "tagalog"):  # Jose, Ana, Juan
        process(ctx, sample(name))
    # Another of Jose's submissions, processed while nothing was stored: only Redis and the outbox know.
    unstored = dataclasses.replace(ctx, results=None)
    second = {**sample("perfect-score"), "response_id": "resp-jose-2",
              "student": {"name": "Jose Dela Cruz", "email": JOSE.upper()}}
    process(unstored, second)
    outbox = settings.outbox_dir
    assert len(list(outbox.glob("*.eml"))) == 4

    with caplog.at_level(logging.DEBUG):
        code, out = run(["data", "forget", "--student", JOSE], DATABASE_URL=database_url,
                        EMAIL_OUTBOX_DIR=str(outbox))

    assert code == 0, out
    assert out.strip() == (f"forgot student {person_id(JOSE)}: 1 stored submissions, 2 job records, "
                           "2 outbox files")
    assert "@" not in caplog.text and "Jose" not in caplog.text and "jose" not in caplog.text.lower()
    assert store.submission("resp-0002") is None
    for response_id in ("resp-0002", "resp-jose-2"):
        assert not redis_client.exists(settings.keys.job(job_id_for(response_id)))
        assert redis_client.zscore(settings.keys.recent_jobs, job_id_for(response_id)) is None
    left = sorted(p.name.split("--")[0] for p in outbox.glob("*.eml"))
    assert left == ["resp-0003", "resp-0004"]  # Ana's and Juan's
    assert store.submission("resp-0003") is not None and store.submission("resp-0004") is not None
    assert redis_client.exists(settings.keys.job(job_id_for("resp-0003")))
    assert store.calls(job_id_for("resp-0002"))  # the cost ledger holds no personal data: kept

    code, out = run(["data", "forget", "--student", person_id(JOSE)], DATABASE_URL=database_url,
                    EMAIL_OUTBOX_DIR=str(outbox))
    assert out.strip().endswith(": 0 stored submissions, 0 job records, 0 outbox files")


def test_the_retention_command_anonymises_old_submissions(
        redis_client: redis.Redis, store: ResultsStore, store_settings: Callable[..., Settings],
        database_url: str) -> None:
    ctx = FeedbackContext.build(store_settings(), redis_client, results=store)
    forty_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    old = {**sample("mixed-score"), "submitted_at": forty_days_ago.isoformat()}
    process(ctx, old)
    process(ctx, sample("all-wrong") | {"submitted_at": dt.datetime.now(dt.UTC).isoformat()})

    code, out = run(["data", "retention"], DATABASE_URL=database_url)
    assert code == 0 and "DATA_RETENTION_DAYS is not set" in out
    code, out = run(["data", "retention"], DATABASE_URL=database_url, DATA_RETENTION_DAYS="30")
    assert code == 0 and out.strip() == "anonymised 1 submissions older than 30 days"

    anonymised, kept = store.submission("resp-0002"), store.submission("resp-0003")
    assert anonymised is not None and anonymised["student_id"] is None and anonymised["answers"] is None
    assert kept is not None and kept["student_id"] == person_id("ana.lim@student.example")
