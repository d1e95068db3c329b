"""A submission's email goes out once: retries, duplicate enqueues and killed workers included.

Real worker processes send through a fake Brevo; what counts is how many emails it accepted.
An attempt that may have sent asks Brevo's list of sent emails before sending again, so the
count holds even against a Brevo that does not de-duplicate by the idempotency key.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from gabay.actors import process_form_response
from gabay.broker import GabayBroker
from gabay.feedback.submission import job_id_for
from gabay.jobs import JobStatus
from gabay.queues import FORM_RESPONSE
from gabay.settings import Settings
from tests.fakes import brevo_server
from tests.fakes.brevo_server import FakeBrevo
from tests.support import feedback_actors
from tests.support.feedback_samples import EXPECTED, SAMPLE_NAMES, sample
from tests.support.feedback_workers import MODULES, wait_for_job, worker_env

pytestmark = pytest.mark.slow
JOB = job_id_for("resp-0002")


def test_a_job_retried_after_its_email_was_recorded_sends_nothing(
        start_workers, tmp_path: Path, brevo: FakeBrevo, redis_client: redis.Redis,
        settings: Settings) -> None:
    start_workers(processes=1, threads=2, modules=MODULES, env=worker_env(tmp_path, brevo))

    feedback_actors.fail_after_record.send(sample("mixed-score"))

    record = wait_for_job(redis_client, settings, JOB, JobStatus.SUCCEEDED)
    assert len(brevo.accepted) == 1 and len(brevo.requests) == 1
    assert record.result is not None and record.result["sent_earlier"] is True


def test_a_job_retried_between_send_and_record_finds_its_email_in_brevos_list(
        start_workers, tmp_path: Path, brevo: FakeBrevo, redis_client: redis.Redis,
        settings: Settings) -> None:
    brevo.deduplicate = False  # only the list can stop a second email now
    start_workers(processes=1, threads=2, modules=MODULES, env=worker_env(tmp_path, brevo))

    feedback_actors.fail_after_send.send(sample("mixed-score"))

    record = wait_for_job(redis_client, settings, JOB, JobStatus.SUCCEEDED)
    assert len(brevo.accepted) == 1 and len(brevo.sends) == 1 and len(brevo.log_queries) == 1
    assert record.result is not None and record.result["sent_earlier"] is True
    assert record.result["message_id"] == brevo.accepted[0]["messageId"]


def test_five_emails_whose_answers_were_lost_stay_five_without_deduplication(
        start_workers, tmp_path: Path, brevo: FakeBrevo, redis_client: redis.Redis,
        settings: Settings) -> None:
    brevo.deduplicate = False
    brevo.script(*(brevo_server.accept_then_drop() for _ in SAMPLE_NAMES))
    start_workers(processes=2, threads=4, env=worker_env(tmp_path, brevo))

    jobs = [process_form_response.send(sample(name)) for name in SAMPLE_NAMES]

    for job in jobs:
        record = wait_for_job(redis_client, settings, job, JobStatus.SUCCEEDED, timeout=90)
        assert record.result is not None and record.result["sent_earlier"] is True
    assert len(SAMPLE_NAMES) == 5 and len(brevo.accepted) == 5 and len(brevo.sends) == 5
    assert sorted(a["to"][0]["email"] for a in brevo.accepted) == sorted(
        EXPECTED[name][3] for name in SAMPLE_NAMES)


def test_the_same_submission_enqueued_twice_is_emailed_once(
        start_workers, tmp_path: Path, brevo: FakeBrevo, broker: GabayBroker, redis_client: redis.Redis,
        settings: Settings) -> None:
    start_workers(processes=2, threads=4, env=worker_env(tmp_path, brevo))

    first = process_form_response.send(sample("mixed-score"))
    second = process_form_response.send(sample("mixed-score"))

    assert first == second == JOB
    broker.join(FORM_RESPONSE, timeout=90_000)
    assert wait_for_job(redis_client, settings, JOB, JobStatus.SUCCEEDED)
    assert len(brevo.accepted) == 1
    assert len(brevo.requests) == 1  # the second run found our sent record: Brevo was not asked again


def test_a_worker_killed_right_after_the_send_is_replaced_without_a_second_email(
        start_workers, tmp_path: Path, brevo: FakeBrevo, redis_client: redis.Redis,
        settings: Settings) -> None:
    brevo.deduplicate = False  # only the list can stop a second email now
    env = worker_env(tmp_path, brevo)
    doomed = start_workers(processes=1, threads=2, modules=MODULES, env=env)

    feedback_actors.die_after_send.send(sample("mixed-score"))

    doomed.wait(timeout=60)  # the worker SIGKILLed itself right after Brevo accepted the email
    assert len(brevo.accepted) == 1
    assert redis_client.hget(settings.keys.sent(JOB), "state") == b"sending"
    start_workers(processes=1, threads=2, modules=MODULES, env=env)

    record = wait_for_job(redis_client, settings, JOB, JobStatus.SUCCEEDED, timeout=90)
    assert len(brevo.accepted) == 1 and len(brevo.sends) == 1 and len(brevo.log_queries) == 1
    assert record.result is not None and record.result["via"] == "brevo"
    assert record.result["message_id"] == brevo.accepted[0]["messageId"]
    assert redis_client.hget(settings.keys.sent(JOB), "state") == b"sent"
