"""Idle consumers wait for a wake-up instead of polling: a send starts at once, a push that tells
nobody waits for the next idle fetch, and a lost subscription costs one reconnect. Pauses and
restart requests are announced the same way, and read slowly while announcements are heard."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from gabay.broker import GabayBroker
from gabay.cluster.pause_flags import PauseFlags
from gabay.cluster.periodic import Periodic
from gabay.middleware.pause import QUIET_INTERVAL
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


def test_a_pause_announced_on_the_signal_channel_holds_at_once_and_a_silent_flag_still_holds(
        idle_workers, redis_client: redis.Redis, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    flags = PauseFlags(redis_client, settings)
    flags.pause([actors.TEST_QUEUE])
    time.sleep(0.5)  # the promise: within about 0.5 s of pause() no process starts a job
    actors.record.send("paused")
    time.sleep(1.0)  # a window in which it must not start
    assert "paused" not in recorded(redis_client, settings)
    flags.resume([actors.TEST_QUEUE])
    started_within(redis_client, settings, "paused", 3)

    redis_client.hset(settings.keys.pause, actors.TEST_QUEUE, "1")  # set without telling anyone
    time.sleep(QUIET_INTERVAL + 1.0)  # the slow re-read while the process hears the signals
    actors.record.send("silently-paused")
    time.sleep(1.0)  # a window in which it must not start
    assert "silently-paused" not in recorded(redis_client, settings)
    flags.resume([actors.TEST_QUEUE])
    started_within(redis_client, settings, "silently-paused", 3)


def test_a_periodic_reader_ticks_when_told_and_slowly_while_it_hears() -> None:
    ticks: list[float] = []
    signal, heard = threading.Event(), threading.Event()
    reader = Periodic("test-reader", 0.05, lambda: ticks.append(time.monotonic()), signal=signal,
                      heard=heard, quiet_interval=30.0)
    reader.start()
    try:
        wait_for(lambda: len(ticks) >= 3, timeout=5, message="ticks every 0.05 s while not heard")
        heard.set()
        time.sleep(0.1)  # the wait in progress ends; the next one is the quiet one
        quiet_from = len(ticks)
        time.sleep(0.3)
        assert len(ticks) == quiet_from  # quiet: nothing for 30 s unless told
        signal.set()
        wait_for(lambda: len(ticks) == quiet_from + 1, timeout=2, message="a tick when told")
    finally:
        reader.stop()
