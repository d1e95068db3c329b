"""Retry from the dead-letter queue in a real worker: the same message runs again and succeeds."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import redis

from gabay.actors.feedback import process_form_response
from gabay.console.jobs import JobConsole
from gabay.jobs import JobStatus, JobStore
from gabay.queues import FORM_RESPONSE
from gabay.settings import Settings
from tests.fakes import brevo_server
from tests.fakes.brevo_server import FakeBrevo
from tests.support.feedback_samples import sample
from tests.support.feedback_workers import MODULES, wait_for_job, worker_env
from tests.support.polling import wait_for
from tests.support.processes import WorkerProcess


def test_a_dead_lettered_job_is_retried_with_its_ids_and_then_succeeds(
        start_workers: Callable[..., WorkerProcess], brevo: FakeBrevo, redis_client: redis.Redis,
        settings: Settings, tmp_path: Path) -> None:
    start_workers(processes=1, threads=2, modules=MODULES, env=worker_env(tmp_path, brevo))
    brevo.script(brevo_server.bad_request())  # the first send is rejected: final, dead-lettered
    data = sample("mixed-score")
    data["response_id"] = "resp-" + uuid.uuid4().hex[:12]
    job_id = process_form_response.send(data)
    wait_for_job(redis_client, settings, job_id, JobStatus.FAILED, timeout=60)
    store = JobStore(redis_client, settings)
    keys = settings.keys
    wait_for(lambda: redis_client.zcard(keys.dead_letters(FORM_RESPONSE)) == 1, timeout=10,
             message="the message to be dead-lettered")
    redis_id = redis_client.zrange(keys.dead_letters(FORM_RESPONSE), 0, -1)[0].decode()
    assert redis_client.get(keys.dead_letter_of(job_id)) == f"{FORM_RESPONSE} {redis_id}".encode()
    attempts = wait_for(lambda: store.get(job_id).details.get("attempts"), timeout=5,
                        message="the failed attempt on the job")
    assert attempts[-1]["error"].startswith("EmailRejected")

    outcome = JobConsole(redis_client, store, keys).retry(job_id)

    assert outcome.ok, outcome.message
    record = wait_for_job(redis_client, settings, job_id, JobStatus.SUCCEEDED, timeout=60)
    assert record.result is not None and record.result["via"] == "brevo"
    assert len(brevo.sends) == 2 and len(brevo.accepted) == 1  # rejected once, then sent once
    assert redis_client.zcard(keys.dead_letters(FORM_RESPONSE)) == 0
    assert record.details["retried_by_operator"] == 1
