"""The client API: one connection pool per process, typed results, wait(), the asyncio client, and
the ids every Actor method of the entry points returns (the job's, the stored and dead-lettered
message's)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis

import gabay.client
import gabay.jobs
from gabay.actors import generate_questions, process_form_response
from gabay.broker import GabayBroker
from gabay.client import AsyncJobsClient, FeedbackJob, JobsClient, QuestionJob
from gabay.client.connection import connect_async
from gabay.client.models import parse_job
from gabay.errors import GabayError, InvalidInput, JobNotFinished, JobNotFound
from gabay.feedback.pipeline import FeedbackContext, process
from gabay.feedback.submission import job_id_for
from gabay.jobs import JobStatus, JobStore
from gabay.queues import FORM_RESPONSE, RETRIEVAL
from gabay.settings import Settings, load_settings
from tests.conftest import TEST_DB
from tests.fakes.brevo_server import FakeBrevo
from tests.support.feedback_samples import sample
from tests.support.feedback_workers import dead_letters, worker_env
from tests.support.polling import wait_for

DOCUMENT = Path(__file__).resolve().parent.parent / "examples" / "documents"
QUESTION_QUEUES = ("retrieval", "generation", "validation")


def question_request(**extra: Any) -> dict[str, Any]:
    path = sorted(DOCUMENT.glob("*.md"))[0]
    return {"document": {"id": path.stem, "title": path.stem, "text": path.read_text()}, "count": 3, **extra}


@pytest.fixture
def fresh_defaults(redis_client: redis.Redis) -> Iterator[None]:
    """The process-wide store and client built anew for this test, and forgotten after it."""
    gabay.jobs.shared_store.cache_clear()
    gabay.client.default_client.cache_clear()
    yield
    gabay.jobs.shared_store().client.close()
    gabay.jobs.shared_store.cache_clear()
    gabay.client.default_client.cache_clear()


def connections_on_test_db(client: redis.Redis) -> int:
    return sum(1 for c in client.client_list() if int(c["db"]) == TEST_DB)


def stored_messages(broker: GabayBroker, queue: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in broker.client.hvals(broker.settings.keys.messages(queue))]


# -- one pool per process --

def test_300_reads_through_the_module_functions_use_one_connection(
        fresh_defaults: None, redis_client: redis.Redis, settings: Settings) -> None:
    job = JobStore(redis_client, settings).create("questions", document_id="doc-1")
    before = connections_on_test_db(redis_client)

    for _ in range(300):
        assert gabay.jobs.get(job.id).id == job.id
        assert gabay.client.get(job.id).id == job.id

    pool = gabay.jobs.shared_store().client.connection_pool
    assert pool._created_connections == 1  # type: ignore[attr-defined]
    assert connections_on_test_db(redis_client) - before == 1
    assert gabay.client.default_client().store is gabay.jobs.shared_store()


def test_threads_share_the_pool_and_a_killed_connection_is_replaced(
        fresh_defaults: None, redis_client: redis.Redis, settings: Settings) -> None:
    job = JobStore(redis_client, settings).create("questions")
    store = gabay.jobs.shared_store()
    threads = [threading.Thread(target=lambda: [gabay.jobs.get(job.id) for _ in range(50)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.client.connection_pool._created_connections <= 4  # type: ignore[attr-defined]

    store.client.connection_pool.disconnect()
    gabay.jobs.get(job.id)  # one connection again
    killed = store.client.client_id()
    redis_client.client_kill_filter(_id=killed)  # Redis drops it (a restart, a kill)

    assert gabay.jobs.get(job.id).id == job.id  # the pool reconnects (health check), the read answers
    assert store.client.client_id() != killed


# -- typed results --

def test_a_feedback_job_reads_back_typed_and_round_trips(
        redis_client: redis.Redis, settings: Settings, tmp_path: Path) -> None:
    context = FeedbackContext.build(load_settings(email_outbox_dir=tmp_path), redis_client)
    process(context, sample("mixed-score"))
    client = JobsClient(JobStore(redis_client, settings))

    job = client.feedback(job_id_for("resp-0002"))

    assert isinstance(job, FeedbackJob) and job.status is JobStatus.SUCCEEDED
    assert job.result is not None
    assert (job.result.score.earned, job.result.score.possible, job.result.score.percent) == (3, 5, 60)
    assert job.result.via == "outbox" and job.result.questions[0].question_id
    assert parse_job(job.model_dump_json()) == job
    raw = redis_client.get(settings.keys.job(job.id))
    assert raw is not None and parse_job(raw) == job
    with pytest.raises(GabayError, match="is a 'feedback' job"):
        client.questions(job.id)


def test_an_unknown_kind_stays_a_plain_record(redis_client: redis.Redis, settings: Settings) -> None:
    store = JobStore(redis_client, settings)
    job = store.create("analytics", form_id="f-1")
    read = JobsClient(store).get(job.id)
    assert type(read) is gabay.jobs.JobRecord and read.details == {"form_id": "f-1"}


# -- wait --

def test_wait_returns_as_soon_as_the_job_finishes_and_raises_on_timeout(
        redis_client: redis.Redis, settings: Settings) -> None:
    store = JobStore(redis_client, settings)
    client = JobsClient(store)
    job = store.create("questions")

    started = time.monotonic()
    with pytest.raises(JobNotFinished, match=f"job {job.id} not finished after 0.3 s") as raised:
        client.wait(job.id, timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 1.0
    assert raised.value.record.status is JobStatus.QUEUED  # type: ignore[attr-defined]

    finisher = threading.Timer(0.4, lambda: store.succeed(job.id, {"document_id": "d", "count": 0,
                                                                   "questions": []}))
    finisher.start()
    started = time.monotonic()
    done = client.wait(job.id, timeout=10)
    assert isinstance(done, QuestionJob) and done.status is JobStatus.SUCCEEDED
    assert time.monotonic() - started < 1.5  # the backoff caps a pause at 1 s
    with pytest.raises(JobNotFound):
        client.wait("no-such-job", timeout=1)


# -- the asyncio client, on the real Redis --

def test_the_async_client_gets_and_waits_without_blocking_the_loop(
        redis_client: redis.Redis, settings: Settings) -> None:
    store = JobStore(redis_client, settings)
    job = store.create("questions", document_id="doc-2")

    async def scenario() -> None:
        client = AsyncJobsClient.from_settings(settings)
        try:
            first = await client.get(job.id)
            assert isinstance(first, QuestionJob) and first.status is JobStatus.QUEUED
            with pytest.raises(JobNotFound):
                await client.get("no-such-job")
            with pytest.raises(JobNotFinished):
                await client.wait(job.id, timeout=0.2)

            ticks = 0

            async def ticker() -> None:  # runs while wait() polls: the loop is never blocked
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            async def finish_later() -> None:
                await asyncio.sleep(0.3)
                await asyncio.to_thread(store.fail, job.id, "provider down")

            tick, finish = asyncio.create_task(ticker()), asyncio.create_task(finish_later())
            done = await client.wait(job.id, timeout=10)
            tick.cancel()
            await finish
            assert done.status is JobStatus.FAILED and done.error == "provider down"
            assert ticks >= 10
            assert len({id(c) for c in client.client.connection_pool._available_connections}) == 1
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_the_async_client_names_an_unreachable_redis(settings: Settings) -> None:
    async def scenario() -> None:
        client = AsyncJobsClient(connect_async(settings, "redis://127.0.0.1:1/0"),
                                 settings.keys)
        try:
            with pytest.raises(redis.ConnectionError):
                await client.get("any")
        finally:
            await client.aclose()

    asyncio.run(scenario())


# -- the ids every Actor method of the entry points returns --

def test_send_with_options_returns_the_job_id_as_the_message_id(broker: GabayBroker,
                                                                 redis_client: redis.Redis,
                                                                 settings: Settings) -> None:
    store = JobStore(redis_client, settings)

    message = process_form_response.send_with_options(args=(sample("mixed-score"),), priority="high")

    assert message.message_id == job_id_for("resp-0002") == store.get(message.message_id).id
    assert [m["message_id"] for m in stored_messages(broker, FORM_RESPONSE)] == [message.message_id]
    assert process_form_response.send(sample("mixed-score")) == message.message_id

    later = generate_questions.send_with_options(args=(question_request(request_id="req-7"),), delay=60_000)
    assert later.message_id == "req-7" == store.get("req-7").id
    assert broker.client.zcard(settings.keys.due(RETRIEVAL)) == 1
    assert [m["message_id"] for m in stored_messages(broker, RETRIEVAL)] == ["req-7"]


def test_every_actor_method_validates_before_anything_exists(broker: GabayBroker, redis_client: redis.Redis,
                                                             settings: Settings) -> None:
    assert isinstance(generate_questions, dramatiq.Actor)
    bad = question_request(count=500)
    for attempt in (lambda: generate_questions.send(bad),
                    lambda: generate_questions.send_with_options(args=(bad,), delay=1_000),
                    lambda: generate_questions.message(bad),
                    lambda: generate_questions.message_with_options(args=(bad,), priority="low")):
        with pytest.raises(InvalidInput, match="count"):
            attempt()
    with pytest.raises(ValueError, match="priority"):
        generate_questions.send_with_options(args=(question_request(request_id="r-p"),), priority="asap")
    with pytest.raises(TypeError, match="one payload"):
        generate_questions.send_with_options(args=(question_request(), "job-id"))
    assert redis_client.keys(settings.keys.job("*")) == []
    assert stored_messages(broker, RETRIEVAL) == []


def test_message_builds_the_validated_message_of_the_job_for_a_pipeline(broker: GabayBroker,
                                                                          redis_client: redis.Redis,
                                                                          settings: Settings) -> None:
    message = generate_questions.message(question_request(request_id="req-m"))

    assert message.message_id == "req-m" and message.actor_name == generate_questions.actor_name
    assert JobStore(redis_client, settings).get("req-m").status is JobStatus.QUEUED
    assert stored_messages(broker, RETRIEVAL) == []  # built, not enqueued
    enqueued = broker.enqueue(message)
    assert [m["message_id"] for m in stored_messages(broker, RETRIEVAL)] == [enqueued.message_id]


@pytest.mark.slow
def test_a_delayed_high_priority_request_is_waited_for_typed(start_workers: Callable,
                                                              fresh_defaults: None) -> None:
    start_workers(processes=1, threads=2, queues=QUESTION_QUEUES)

    message = generate_questions.send_with_options(args=(question_request(),), delay=200, priority="high")
    job = gabay.client.wait(message.message_id, timeout=60)

    assert isinstance(job, QuestionJob) and job.status is JobStatus.SUCCEEDED, job.error
    assert job.id == message.message_id
    assert job.result is not None and len(job.result.questions) == 3
    assert all(q.answer and q.passage_id for q in job.result.questions)
    assert job.stages["retrieval"].started_at >= job.created_at + 0.2 - 0.05  # the delay was kept


@pytest.mark.slow
def test_a_dead_lettered_submission_carries_the_id_send_with_options_returned(
        start_workers: Callable, tmp_path: Path, broker: GabayBroker, brevo: FakeBrevo,
        fresh_defaults: None) -> None:
    env = worker_env(tmp_path / "outbox", brevo) | {"BREVO_API_KEY": "xkeysib-a-wrong-one"}
    start_workers(processes=1, threads=2, queues=(FORM_RESPONSE,), env=env)

    message = process_form_response.send_with_options(args=(sample("perfect-score"),), delay=100)
    job = gabay.client.wait(message.message_id, timeout=60)

    assert job.status is JobStatus.FAILED and "HTTP 401" in (job.error or "")
    letters = wait_for(lambda: dead_letters(broker.client, broker.namespace), timeout=30,
                       message="the dead letter")
    assert [letter["message_id"] for letter in letters] == [message.message_id] == [job.id]
