"""Idle consumers wait for a wake-up instead of polling: a send starts at once, a push that tells
nobody waits for the next idle fetch, and a lost subscription costs one reconnect."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from gabay.broker import GabayBroker
from gabay.settings import Settings
from tests.support import actors
from tests.support.polling import wait_for

pytestmark = pytest.mark.slow

IDLE = 4.0  # IDLE_FETCH_INTERVAL of these workers, seconds


def recorded(client: redis.Redis, settings: Settings) -> list[str]:
    return [token.decode().split(":")[0] for token in client.lrange(settings.keys.test("record"), 0, -1)]


def started_within(client: redis.Redis, settings: Settings, token: str, seconds: float) -> float:
    began = time.monotonic()
    wait_for(lambda: token in recorded(client, settings), timeout=seconds, message=f"{token} to run")
    return time.monotonic() - began


@pytest.fixture
def idle_workers(start_workers, redis_client: redis.Redis, settings: Settings):  # type: ignore[no-untyped-def]
    """One worker process whose consumers have gone idle (one job run, then a quiet second)."""
    workers = start_workers(processes=1, threads=2, env={"IDLE_FETCH_INTERVAL": str(IDLE)})
    actors.record.send("warm-up")
    started_within(redis_client, settings, "warm-up", 30)
    time.sleep(1.0)  # the consumers miss once and begin their long idle wait
    return workers


def test_a_message_sent_to_an_idle_worker_starts_at_once(
        idle_workers, redis_client: redis.Redis, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    actors.record.send("sent")
    took = started_within(redis_client, settings, "sent", IDLE * 0.6)
    assert took < IDLE * 0.6  # well inside the idle wait: the send woke the consumer


def test_the_send_is_what_wakes_it(idle_workers, redis_client: redis.Redis, settings: Settings,
                                   broker: GabayBroker) -> None:  # type: ignore[no-untyped-def]
    """A push that publishes nothing (a plain Dramatiq producer) waits for the next idle fetch."""
    message = actors.record.message("silent").copy(options={"redis_message_id": str(uuid.uuid4())})
    redis_id = message.options["redis_message_id"]
    redis_client.hset(settings.keys.messages(actors.TEST_QUEUE), redis_id, message.encode())
    redis_client.rpush(settings.keys.queue(actors.TEST_QUEUE), redis_id)

    time.sleep(1.0)  # a window in which it must not start: nobody was told
    assert "silent" not in recorded(redis_client, settings)
    started_within(redis_client, settings, "silent", IDLE + 5)  # the idle fetch finds it


def test_a_lost_subscription_is_heard_again_and_nothing_waits_for_the_idle_fetch(
        idle_workers, redis_client: redis.Redis, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    killed = redis_client.client_kill_filter(_type="pubsub")
    assert killed >= 1
    actors.record.send("after-kill")

    took = started_within(redis_client, settings, "after-kill", IDLE * 0.6)
    assert took < IDLE * 0.6  # the resubscribe woke every consumer once
    actors.record.send("later")
    started_within(redis_client, settings, "later", IDLE * 0.6)  # and it hears the sends again
