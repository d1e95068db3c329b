"""``gabay cancel`` and ``gabay retry``: one line per job, exit code 1 when any was refused."""

from __future__ import annotations

import redis
from click.testing import CliRunner, Result

from gabay.cli import main
from gabay.cluster.cancel_requests import CancelRequests
from gabay.jobs import JobStatus, JobStore
from gabay.queues import FORM_RESPONSE
from gabay.settings import Settings
from tests.support.console_data import dead_letter


def gabay(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_cancel_requests_the_cancel_and_refuses_what_cannot_be_cancelled(
        redis_client: redis.Redis, settings: Settings) -> None:
    store = JobStore(redis_client, settings)
    store.create("questions", "req-1")
    store.create("questions", "req-2")
    store.succeed("req-2", {"questions": []})

    both = gabay("cancel", "req-1", "req-2", "no-such-job")

    assert both.exit_code == 1
    assert "job req-1: cancel requested" in both.stdout
    assert "job req-2 not cancelled: it is succeeded already" in both.stderr
    assert "no job 'no-such-job' (unknown or expired)" in both.stderr
    assert CancelRequests(redis_client, settings.keys).is_requested("req-1")
    assert gabay("cancel", "req-1").exit_code == 0  # asking again is harmless


def test_retry_requeues_a_dead_lettered_job_and_then_refuses_a_second_time(
        redis_client: redis.Redis, settings: Settings) -> None:
    redis_id = dead_letter(redis_client, settings, "fb-dead")
    assert gabay("cancel", "fb-dead").exit_code == 0  # nothing of it will run: cancelled at once
    assert JobStore(redis_client, settings).get("fb-dead").status is JobStatus.CANCELLED

    first = gabay("retry", "fb-dead")
    second = gabay("retry", "fb-dead")

    assert first.exit_code == 0, first.output
    assert f"job fb-dead requeued on {FORM_RESPONSE} (message {redis_id})" in first.stdout
    assert not CancelRequests(redis_client, settings.keys).is_requested("fb-dead")  # withdrawn
    assert JobStore(redis_client, settings).get("fb-dead").status is JobStatus.QUEUED
    assert second.exit_code == 1 and "not retried: it is queued" in second.stderr
