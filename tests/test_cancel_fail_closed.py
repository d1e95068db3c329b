"""Cancellation when Redis does not answer, and the interrupt of an LLM call in flight."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import dramatiq
import pytest
import redis
from dramatiq.middleware.threading import raise_thread_exception
from pydantic import SecretStr

from gabay.broker import GabayBroker
from gabay.cluster.cancel_requests import CancelRequests, JobCancelled
from gabay.cluster.intake import Intake, OwnershipLost
from gabay.jobs import JobStore
from gabay.llm.chat import ChatProvider
from gabay.middleware.cancellation import Cancellation, CancelsUnknown
from gabay.queues import FORM_RESPONSE, SYSTEM
from gabay.settings import Settings
from tests.fakes import llm_server
from tests.fakes.llm_server import trickle
from tests.support.dashboard import free_port
from tests.support.polling import wait_for


def dead_redis() -> redis.Redis:
    """A client of a port where nothing listens: every command fails at once."""
    return redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)


def middleware(client: redis.Redis, settings: Settings, stale_after: float = 2.0) -> Cancellation:
    intake = Intake(client, settings.keys, "worker-" + uuid.uuid4().hex[:6])
    return Cancellation(client, settings.keys, JobStore(client, settings), intake,
                        dead_letter_ttl_ms=60_000, stale_after=stale_after)


def job_message(job_id: str, queue: str = FORM_RESPONSE) -> dramatiq.Message:
    return dramatiq.Message(queue_name=queue, actor_name="process_form_response", args=(),
                            kwargs={}, options={"redis_message_id": str(uuid.uuid4())},
                            message_id=job_id)


def test_without_the_cancel_requests_no_job_message_starts(redis_client: redis.Redis, settings: Settings,
                                                           broker: GabayBroker) -> None:
    down = middleware(dead_redis(), settings)
    down.refresh()  # fails: logged, nothing known

    with pytest.raises(CancelsUnknown):
        down.before_process_message(broker, job_message("fb-1"))
    down.before_process_message(broker, job_message("probe-1", queue=SYSTEM))  # not a job: runs

    fresh = middleware(redis_client, settings, stale_after=0.3)
    fresh.refresh()
    fresh.before_process_message(broker, job_message("fb-2"))  # known: it starts
    fresh.after_process_message(broker, job_message("fb-2"))
    fresh.requests = CancelRequests(dead_redis(), settings.keys)  # then Redis goes away

    def refused() -> bool:
        fresh.refresh()
        try:
            fresh.before_process_message(broker, job_message("fb-3"))
        except CancelsUnknown:
            return True
        fresh.after_process_message(broker, job_message("fb-3"))
        return False

    wait_for(refused, timeout=5, message="a stale view of the cancels to refuse starts")


def test_the_broker_puts_a_refused_start_back_without_spending_a_retry(
        redis_client: redis.Redis, settings: Settings, broker: GabayBroker) -> None:
    """What CancelsUnknown leads to in the real broker: the gate could not decide."""
    message = job_message("fb-4")
    data = dramatiq.Message(**{**message._asdict(), "options": {**message.options, "retries": 2}})
    keys = settings.keys
    redis_id = data.options["redis_message_id"]
    acks = keys.acks(broker.broker_id, FORM_RESPONSE)
    redis_client.hset(keys.messages(FORM_RESPONSE), redis_id, data.encode())
    redis_client.sadd(acks, redis_id)  # as if this process had fetched it
    down = middleware(dead_redis(), settings)
    broker.gate_failures = 0

    with pytest.raises(dramatiq.middleware.SkipMessage):
        broker._hold_back(down, data, CancelsUnknown("cancel requests unknown"))

    assert redis_client.lrange(keys.queue(FORM_RESPONSE), 0, -1) == [redis_id.encode()]
    assert not redis_client.sismember(acks, redis_id)
    assert dramatiq.Message.decode(redis_client.hget(keys.messages(FORM_RESPONSE), redis_id)
                                   ).options["retries"] == 2
    broker.gate_failures = 0


def test_a_guard_that_cannot_read_the_cancel_puts_the_job_back_and_stops_it(
        settings: Settings, redis_client: redis.Redis) -> None:
    down = middleware(dead_redis(), settings)

    with pytest.raises(OwnershipLost, match="could not read whether job fb-5 was cancelled"):
        down.check(job_message("fb-5"))
    assert down.intake.kept == 1  # to be put back as soon as Redis answers


def test_a_guard_stops_a_cancelled_job_before_its_next_side_effect(
        redis_client: redis.Redis, settings: Settings) -> None:
    cancels = middleware(redis_client, settings)
    cancels.check(job_message("fb-6"))  # not cancelled: goes on
    CancelRequests(redis_client, settings.keys).request("fb-6")

    with pytest.raises(JobCancelled):
        cancels.check(job_message("fb-6"))


@pytest.fixture
def slow_llm() -> Iterator[llm_server.FakeLLMServer]:
    with llm_server.running() as fake:
        fake.default = trickle(30.0, interval=0.1)
        yield fake


def test_an_interrupted_llm_call_ends_at_once_and_the_provider_sees_the_connection_cut(
        slow_llm: llm_server.FakeLLMServer, settings: Settings) -> None:
    provider = ChatProvider("openai", "gpt-4o-mini", api_key=SecretStr(slow_llm.api_key),
                            base_url=slow_llm.base_url,
                            settings=settings.model_copy(update={"llm_timeout": 60}))
    raised: list[BaseException] = []

    def call() -> None:
        try:
            provider.complete_json("Answer in JSON.", "JSON please", stage="feedback")
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    wait_for(lambda: slow_llm.inflight == 1, timeout=10, message="the call to be in flight")
    interrupted = time.monotonic()
    raise_thread_exception(thread.ident, JobCancelled)
    thread.join(5)

    assert not thread.is_alive() and time.monotonic() - interrupted < 1.0
    assert len(raised) == 1 and isinstance(raised[0], JobCancelled)
    wait_for(lambda: slow_llm.inflight == 0, timeout=1.0, message="the provider to see the cut")
    wait_for(lambda: not [t for t in threading.enumerate() if t.name.startswith("gabay-llm-")],
             timeout=1.0, message="the call's helper thread to end")
    assert len(slow_llm.requests) == 1
