"""Pausing and resuming queues for the whole cluster, with real worker processes."""

from __future__ import annotations

import time

import pytest
import redis

from gabay.broker import GabayBroker
from gabay.middleware.pause import PauseFlags
from gabay.queues import ALL_QUEUES, GENERATION
from gabay.settings import Settings
from tests.support import drain_actors
from tests.support.drain_actors import OTHER_QUEUE, QUEUE, key
from tests.support.polling import assert_stays, wait_for

pytestmark = pytest.mark.slow

MODULES = ("tests.support.drain_actors",)
QUEUES = (QUEUE, OTHER_QUEUE)


@pytest.fixture
def flags(redis_client: redis.Redis, settings: Settings) -> PauseFlags:
    return PauseFlags(redis_client, settings, known_queues=QUEUES)


def _wait_until_seen(workers, text: str, processes: int) -> None:
    """Every worker process logs the change of the flags once it has seen it."""
    wait_for(lambda: workers.log().count(f"Pause flags changed: {text}") >= processes, timeout=15,
             message="the worker processes to see the pause")


def _tokens(client: redis.Redis, name: str) -> list[str]:
    return [item.decode().split(":")[0] for item in client.lrange(key(name), 0, -1)]


def test_flags_pause_one_queue_all_queues_and_resume_exceptions(flags: PauseFlags) -> None:
    assert flags.paused_queues() == set()
    flags.pause([GENERATION])
    assert flags.paused_queues() == {GENERATION}
    flags.pause()
    assert flags.paused_queues() == set(ALL_QUEUES) | set(QUEUES)
    flags.resume([QUEUE])
    assert not flags.is_paused(QUEUE)
    assert flags.is_paused("declared-later")
    flags.resume()
    assert flags.paused_queues() == set()


def test_pause_stops_starts_across_processes_and_resume_restarts_them(
    start_workers, flags: PauseFlags, redis_client: redis.Redis, broker: GabayBroker
) -> None:
    workers = start_workers(processes=2, threads=2, queues=QUEUES, modules=MODULES)
    flags.pause([QUEUE])
    _wait_until_seen(workers, "paused: gabay-drain", processes=2)
    for i in range(20):
        drain_actors.work.send(f"p{i}", 0.3)
    drain_actors.other.send("o1")

    # The other queue keeps running while QUEUE is paused.
    wait_for(lambda: _tokens(redis_client, "other") == ["o1"], timeout=20, message="the other queue")
    assert_stays(lambda: _tokens(redis_client, "started") == [], 1.0,
                 "nothing of the paused queue may start")
    assert redis_client.llen(f"{broker.namespace}:{QUEUE}") == 20  # all waiting, none in memory

    flags.resume([QUEUE])
    wait_for(lambda: len(_tokens(redis_client, "finished")) == 20, timeout=30,
             message="all paused messages to run after resume")
    started = redis_client.lrange(key("started"), 0, -1)
    assert sorted(s.decode().split(":")[0] for s in started) == sorted(f"p{i}" for i in range(20))
    assert {s.decode().split(":")[2] for s in started} == {"0"}  # no retry used
    assert len({s.decode().split(":")[1] for s in started}) == 2  # both processes took part
    assert redis_client.zcard(f"{broker.namespace}:{QUEUE}.XQ") == 0


def test_a_pause_during_work_puts_back_prefetched_messages_without_retries(
    start_workers, flags: PauseFlags, redis_client: redis.Redis, broker: GabayBroker
) -> None:
    workers = start_workers(processes=1, threads=2, queues=QUEUES, modules=MODULES)
    for i in range(12):
        drain_actors.work.send(f"m{i}", 0.5)
    wait_for(lambda: len(_tokens(redis_client, "started")) >= 2, timeout=20, message="first starts")
    flags.pause([QUEUE])
    _wait_until_seen(workers, "paused: gabay-drain", processes=1)
    wait_for(lambda: len(_tokens(redis_client, "started")) == len(_tokens(redis_client, "finished")),
             timeout=20, message="the jobs running at the pause to finish")
    settled = len(_tokens(redis_client, "started"))
    assert_stays(lambda: len(_tokens(redis_client, "started")) == settled, 1.5,
                 "no start while paused")
    assert settled < 12
    # Nothing is held in memory or lost: the rest waits in the queue, not in the dead letters.
    waiting = redis_client.llen(f"{broker.namespace}:{QUEUE}")
    assert waiting == 12 - settled
    assert redis_client.zcard(f"{broker.namespace}:{QUEUE}.XQ") == 0

    flags.resume()
    wait_for(lambda: len(_tokens(redis_client, "finished")) == 12, timeout=30, message="the rest")
    assert sorted(_tokens(redis_client, "finished")) == sorted(f"m{i}" for i in range(12))
    retries = {s.decode().split(":")[2] for s in redis_client.lrange(key("started"), 0, -1)}
    assert retries == {"0"}


def test_a_worker_started_while_paused_honours_the_pause(
    start_workers, flags: PauseFlags, redis_client: redis.Redis, broker: GabayBroker
) -> None:
    flags.pause()
    drain_actors.work.send("early")
    start_workers(processes=1, threads=2, queues=QUEUES, modules=MODULES)
    assert_stays(lambda: _tokens(redis_client, "started") == [], 1.5,
                 "a worker started while paused may start nothing")
    assert redis_client.llen(f"{broker.namespace}:{QUEUE}") == 1

    resumed_at = time.monotonic()
    flags.resume()
    wait_for(lambda: _tokens(redis_client, "finished") == ["early"], timeout=10, message="the start")
    assert time.monotonic() - resumed_at < 5


def test_a_paused_queue_is_not_fetched_so_a_long_backlog_costs_nothing(
    start_workers, flags: PauseFlags, redis_client: redis.Redis, broker: GabayBroker,
    settings: Settings
) -> None:
    flags.pause([QUEUE])
    for i in range(2000):
        drain_actors.work.send(f"b{i}")
    start_workers(processes=1, threads=4, queues=QUEUES, modules=MODULES)
    namespace = broker.namespace
    assert_stays(lambda: redis_client.llen(f"{namespace}:{QUEUE}") == 2000, 2.0,
                 "the paused backlog stays in its queue")
    assert redis_client.hlen(f"{namespace}:{QUEUE}.DQ.msgs") == 0  # nothing re-deferred
    assert list(redis_client.scan_iter(f"{namespace}:__acks__.*.{QUEUE}")) == []  # nothing fetched
    assert redis_client.hgetall(settings.keys.counters(QUEUE)) == {}  # no deferral, no put-back
