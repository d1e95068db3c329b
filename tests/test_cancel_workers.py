"""Cancel by job id in real worker processes: waiting and running jobs, the slot, the LLM call, the email."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from gabay.actors import broker
from gabay.actors.feedback import process_form_response
from gabay.cluster.cancel_requests import CancelRequests
from gabay.console.jobs import JobConsole
from gabay.feedback.submission import job_id_for
from gabay.jobs import JobStatus, JobStore
from gabay.queues import FORM_RESPONSE
from gabay.settings import Settings
from tests.fakes import llm_server
from tests.fakes.llm_server import Behaviour, FakeLLMServer, trickle
from tests.support.cancel_actors import linger_after_send_actor
from tests.support.feedback_llm import feedback_responder
from tests.support.feedback_samples import sample
from tests.support.feedback_workers import MODULES, wait_for_job, worker_env
from tests.support.polling import wait_for
from tests.support.processes import WorkerProcess

ACTOR = "process_form_response"


@pytest.fixture
def slow_llm() -> Iterator[FakeLLMServer]:
    """An OpenAI that answers every call with 200 and then a blank line every 0.1 s for 30 s."""
    with llm_server.running(responder=feedback_responder) as fake:
        fake.default = trickle(30.0, interval=0.1)
        yield fake


@pytest.fixture
def workers(start_workers: Callable[..., WorkerProcess], slow_llm: FakeLLMServer,
            tmp_path: Path) -> WorkerProcess:
    """Two worker processes: a cancel reaches whichever one has the job."""
    env = {**worker_env(tmp_path / "outbox"), "OPENAI_API_KEY": slow_llm.api_key,
           "OPENAI_BASE_URL": slow_llm.base_url, "LLM_TIMEOUT": "60"}
    return start_workers(processes=2, threads=2, modules=(*MODULES, "tests.support.cancel_actors"),
                         env=env)


def submission() -> dict[str, Any]:
    data = sample("mixed-score")
    data["response_id"] = "resp-" + uuid.uuid4().hex[:12]
    return data


def console(client: redis.Redis, settings: Settings) -> JobConsole:
    return JobConsole(client, JobStore(client, settings), settings.keys)


def nothing_left(client: redis.Redis, settings: Settings) -> bool:
    """No message of the queue anywhere: waiting, due, dead-lettered or unacknowledged."""
    keys = settings.keys
    workers = [w.decode() for w in client.zrange(keys.heartbeats, 0, -1)]
    unacked = sum(client.scard(keys.acks(w, FORM_RESPONSE)) for w in workers)
    return (client.llen(keys.queue(FORM_RESPONSE)) == 0 and client.hlen(keys.messages(FORM_RESPONSE)) == 0
            and client.zcard(keys.due(FORM_RESPONSE)) == 0
            and client.zcard(keys.dead_letters(FORM_RESPONSE)) == 0 and unacked == 0)


def test_a_running_job_stops_within_a_second_its_llm_call_cut_and_its_slot_given_back(
        workers: WorkerProcess, slow_llm: FakeLLMServer, redis_client: redis.Redis,
        settings: Settings, tmp_path: Path) -> None:
    job_id = process_form_response.send(submission())
    wait_for(lambda: slow_llm.inflight == 1, timeout=30, message="the LLM call to be in flight")
    assert redis_client.zcard(settings.keys.cap_holders(ACTOR)) == 1

    asked = time.monotonic()
    outcome = console(redis_client, settings).cancel(job_id)
    assert outcome.ok, outcome.message
    wait_for_job(redis_client, settings, job_id, JobStatus.CANCELLED, timeout=1.0)
    took = time.monotonic() - asked

    wait_for(lambda: slow_llm.inflight == 0, timeout=1.0,
             message="the fake LLM to see its connection cut")
    wait_for(lambda: redis_client.zcard(settings.keys.cap_holders(ACTOR)) == 0, timeout=1.0,
             message="the concurrency slot to be given back")
    wait_for(lambda: nothing_left(redis_client, settings), timeout=2.0,
             message="the message to be acknowledged")
    assert took < 1.0
    assert len(slow_llm.requests) == 1  # the SDK did not call again
    assert not list((tmp_path / "outbox").glob("*.eml"))  # no email
    assert "Cancelling running job " + job_id in workers.log()


def test_a_waiting_job_is_dropped_when_fetched_and_never_runs(
        workers: WorkerProcess, slow_llm: FakeLLMServer, redis_client: redis.Redis,
        settings: Settings) -> None:
    message = process_form_response.send_with_options(args=(submission(),), delay=1500)
    job_id = message.message_id
    assert console(redis_client, settings).cancel(job_id).ok
    assert JobStore(redis_client, settings).get(job_id).status is JobStatus.QUEUED  # it still waits

    record = wait_for_job(redis_client, settings, job_id, JobStatus.CANCELLED, timeout=10)

    assert record.details["cancelled_in"] == FORM_RESPONSE
    assert slow_llm.requests == []  # it never started
    wait_for(lambda: nothing_left(redis_client, settings), timeout=2.0,
             message="the dropped message to be acknowledged")
    assert redis_client.zcard(settings.keys.cap_holders(ACTOR)) == 0
    assert redis_client.hget(settings.keys.finished_jobs, "feedback:cancelled") == b"1"


def test_a_cancel_after_the_email_send_started_is_ignored_and_the_email_goes_once(
        workers: WorkerProcess, slow_llm: FakeLLMServer, redis_client: redis.Redis,
        settings: Settings, tmp_path: Path) -> None:
    slow_llm.default = Behaviour()  # the model answers at once: the attempt reaches the email
    data = submission()
    job_id = job_id_for(data["response_id"])
    broker.enqueue(linger_after_send_actor.message(data).copy(message_id=job_id))
    sent = settings.keys.sent(job_id)
    wait_for(lambda: redis_client.hget(sent, "state") == b"sending", timeout=30, interval=0.01,
             message="the email send to start")

    CancelRequests(redis_client, settings.keys).request(job_id)  # past the console's refusal

    record = wait_for_job(redis_client, settings, job_id, JobStatus.SUCCEEDED, timeout=30)
    assert record.details["cancel_ignored"] == "the email send had started"
    assert redis_client.hget(sent, "state") == b"sent"
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
