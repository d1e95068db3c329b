"""The digest worker in real dramatiq processes: one email per teacher per period, through the
fan-out run twice, a worker SIGKILLed right after Brevo accepted the digest (its replacement
finds the email in Brevo's list instead of sending it again), and a results
database that refuses connections (the message is retried, nothing is sent until it answers).

What counts is what the fake Brevo accepted (``deduplicate=False``: only gabay's sent record and
Brevo's list of sent emails stand between a retry and a second email).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from gabay.actors import send_digests, send_teacher_digest
from gabay.broker import GabayBroker
from gabay.digests.periods import Period, latest_due
from gabay.queues import DIGESTS
from gabay.settings import Settings, load_settings
from gabay.store.results import ResultsStore
from gabay.store.schema import upgrade
from tests.fakes.brevo_server import FakeBrevo
from tests.support import digest_actors
from tests.support.feedback_workers import worker_env
from tests.support.polling import wait_for
from tests.support.report_data import TEACHER_ID, seed_exam, seed_teacher

pytestmark = pytest.mark.slow

ZONE = "Asia/Manila"
MODULES = ("tests.support.actors", "tests.support.digest_actors")
POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def due_period() -> Period:
    return latest_due("daily", dt.datetime.now(dt.UTC), ZONE, 7)


def env_for(tmp_path: Path, brevo: FakeBrevo, database: str) -> dict[str, str]:
    return {**worker_env(tmp_path / "outbox", brevo), "DATABASE_URL": database, "SCHEDULE_TIMEZONE": ZONE,
            "DIGEST_HOUR": "7", "BREVO_TIMEOUT": "1", "HEARTBEAT_TIMEOUT": "2"}


def seeded(database: str) -> tuple[ResultsStore, Period]:
    """The database migrated, a teacher with six submissions in the due period."""
    store = ResultsStore.from_settings(load_settings(database_url=database))
    upgrade(store.engine)  # a configured database is migrated by `gabay db upgrade`, not workers
    period = due_period()
    seed_exam(store, submitted_at=period.start + dt.timedelta(hours=2))
    return store, period


def digest_state(store: ResultsStore, teacher_id: str = TEACHER_ID) -> str | None:
    """The state of the teacher's daily digest row, None before it is claimed."""
    rows = [r for r in store.digests(teacher_id) if r["period"] == "daily"]
    return rows[0]["state"] if rows else None


def test_the_fan_out_twice_and_duplicate_messages_send_each_teacher_one_digest(
        start_workers: Any, tmp_path: Path, brevo: FakeBrevo, broker: GabayBroker) -> None:
    brevo.deduplicate = False
    database = f"sqlite:///{tmp_path / 'results.sqlite3'}"
    store, period = seeded(database)
    second = seed_teacher(store, "santos@school.example", "Mr. Santos")
    seed_exam(store, submitted_at=period.start, form_id="chem-quiz", teacher_email="santos@school.example")
    opted = seed_teacher(store, "opted@school.example", "Ms. Opted")
    seed_exam(store, submitted_at=period.start, form_id="opted-quiz", teacher_email="opted@school.example")
    store.set_teacher_preferences(opted, digests_opt_out=True)
    start_workers(processes=1, threads=4, env=env_for(tmp_path, brevo, database))

    send_digests.send("daily")
    send_digests.send("daily")
    send_teacher_digest.send(TEACHER_ID, "daily", period.start.isoformat())  # a duplicate message
    wait_for(lambda: digest_state(store) == "sent" and digest_state(store, second) == "sent",
             timeout=30, message="both digests to be sent")
    broker.join(DIGESTS, timeout=30_000)

    assert sorted(a["to"][0]["email"] for a in brevo.accepted) == ["reyes@school.example",
                                                                    "santos@school.example"]
    assert len(brevo.sends) == 2 and digest_state(store, opted) is None
    assert all(a["subject"] == f"Your daily digest: {period.label}" for a in brevo.accepted)
    store.dispose()


def test_a_worker_killed_right_after_brevo_accepted_the_digest_is_replaced_without_a_second_email(
        start_workers: Any, tmp_path: Path, brevo: FakeBrevo, redis_client: redis.Redis,
        settings: Settings) -> None:
    brevo.deduplicate = False
    database = f"sqlite:///{tmp_path / 'results.sqlite3'}"
    store, period = seeded(database)
    env = env_for(tmp_path, brevo, database)
    doomed = start_workers(processes=1, threads=2, modules=MODULES, env=env)

    digest_actors.die_after_send.send(TEACHER_ID, "daily", period.start.isoformat())

    doomed.wait(timeout=60)  # the worker SIGKILLed itself right after Brevo accepted the email
    assert len(brevo.accepted) == 1 and digest_state(store) == "claimed"
    start_workers(processes=1, threads=2, modules=MODULES, env=env)

    wait_for(lambda: digest_state(store) == "sent", timeout=60, message="the digest to be recorded")
    assert len(brevo.accepted) == 1 and len(brevo.sends) == 1 and len(brevo.log_queries) == 1
    assert store.digests(TEACHER_ID)[0]["email_message_id"] == brevo.accepted[0]["messageId"]
    store.dispose()


@pytest.fixture
def postgres_database() -> Iterator[tuple[str, psycopg.Connection[Any]]]:
    """A PostgreSQL database of this test and an admin connection that can close it to clients."""
    name = f"gabay_test_digests_{secrets.token_hex(4)}"
    admin = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}", admin
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_a_database_that_refuses_connections_retries_the_digest_and_sends_it_once_it_answers(
        start_workers: Any, tmp_path: Path, brevo: FakeBrevo,
        postgres_database: tuple[str, psycopg.Connection[Any]]) -> None:
    database, admin = postgres_database
    name = database.rsplit("/", 1)[1]
    store, period = seeded(database)
    store.dispose()
    workers = start_workers(processes=1, threads=2, env=env_for(tmp_path, brevo, database))
    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))

    send_teacher_digest.send(TEACHER_ID, "daily", period.start.isoformat())

    wait_for(lambda: workers.log().count("StoreUnavailable") >= 2, timeout=30,
             message="two attempts to fail on the database")
    assert brevo.requests == []  # nothing sent while the store cannot record the claim
    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    wait_for(lambda: digest_state(store) == "sent", timeout=30, message="the retried digest to be sent")
    assert len(brevo.accepted) == 1 and brevo.accepted[0]["to"][0]["email"] == "reyes@school.example"
    store.dispose()
