"""Cluster-wide counters: completed, final failures with reasons, running now, per minute.

Each worker process buffers its counts and publishes them every FLUSH_EVERY and when it stops.
"""

from __future__ import annotations

import time

import pytest
import redis
from dramatiq import Message
from dramatiq.broker import MessageProxy

from gabay.broker import GabayBroker
from gabay.cluster.stats import Failure, QueueStats, StatsWriter
from gabay.cluster.stats_buffer import StatsBuffer
from gabay.middleware.stats import Stats
from gabay.settings import Settings
from tests.support import drain_actors
from tests.support.drain_actors import QUEUE, start_registered
from tests.support.polling import wait_for

MODULES = ("tests.support.drain_actors",)


@pytest.fixture
def stats(redis_client: redis.Redis, settings: Settings) -> QueueStats:
    return QueueStats(redis_client, settings)


def buffer_of(broker: GabayBroker, interval: float = 0.25) -> StatsBuffer:
    """A buffer publishing as the broker's worker process, as the middleware stack builds it."""
    settings = broker.settings
    return StatsBuffer(StatsWriter(broker.client, settings), broker.broker_id,
                       round(settings.heartbeat_timeout * 1000), interval=interval)


@pytest.mark.slow
def test_counters_match_the_work_done_by_two_processes(
    start_workers, stats: QueueStats, broker: GabayBroker
) -> None:
    start_workers(processes=2, threads=2, queues=(QUEUE,), modules=MODULES)
    for i in range(10):
        drain_actors.work.send(f"ok{i}", 0.1)
    drain_actors.reject.send("bad1")
    drain_actors.reject.send("bad2")
    drain_actors.flaky.send("flaky1")  # fails, is retried once, then fails for good

    wait_for(lambda: stats.counters(QUEUE).failed == 3 and stats.counters(QUEUE).completed == 10,
             timeout=30, message="all outcomes counted")
    counters = stats.counters(QUEUE)
    assert (counters.completed, counters.failed, counters.running) == (10, 3, 0)
    assert broker.client.zcard(broker.settings.keys.dead_letters(QUEUE)) == 3  # failed = dead-lettered

    reasons = {f.message_id: f for f in stats.recent_failures()}
    assert len(reasons) == 3
    assert sorted(f.reason for f in reasons.values()) == [
        "InvalidInput: submission bad1 has no answers",
        "InvalidInput: submission bad2 has no answers",
        "RuntimeError: flaky flaky1 failed",
    ]
    assert {f.actor for f in reasons.values()} == {"reject", "flaky"}
    assert {f.queue for f in reasons.values()} == {QUEUE}

    minutes = stats.throughput(QUEUE, minutes=60)
    assert len(minutes) == 60
    assert minutes == sorted(minutes)
    assert sum(c for _, c, _ in minutes) == 10 and sum(f for _, _, f in minutes) == 3


@pytest.mark.slow
def test_running_counts_real_starts_across_processes_and_a_killed_process_drops_out(
    start_workers, stats: QueueStats, redis_client: redis.Redis
) -> None:
    # A prefetch of 2 with 2 threads: a busy process leaves new messages to the other one.
    # (A short drain so that stopping the survivor at the end does not wait for its long jobs.)
    narrow = {"dramatiq_queue_prefetch": "2", "DRAIN_TIMEOUT": "1"}
    doomed, _, doomed_id = start_registered(start_workers, redis_client, threads=2, env=narrow)
    for i in range(2):
        drain_actors.work.send(f"long{i}", 30.0)
    wait_for(lambda: stats.counters(QUEUE).running == 2, timeout=20, message="2 running")
    _, _, survivor_id = start_registered(start_workers, redis_client, threads=2, env=narrow)
    drain_actors.work.send("long2", 30.0)
    wait_for(lambda: stats.counters(QUEUE).running == 3, timeout=20, message="3 running")
    assert {job.worker_id for job in stats.running_jobs()} == {doomed_id, survivor_id}

    doomed.kill()
    # The killed process's entries expire within HEARTBEAT_TIMEOUT; one of its jobs is recovered
    # and fills the survivor's second thread.
    wait_for(lambda: {job.worker_id for job in stats.running_jobs()} == {survivor_id}, timeout=20,
             message="the killed process's running entries to vanish")
    wait_for(lambda: stats.counters(QUEUE).running == 2, timeout=20, message="the recovered job")
    assert {job.worker_id for job in stats.running_jobs()} == {survivor_id}


def test_skips_count_as_deferred_or_requeued_never_as_failed(
    broker: GabayBroker, stats: QueueStats
) -> None:
    middleware = Stats(buffer_of(broker), broker.intake)
    deferred = MessageProxy(Message(queue_name=QUEUE, actor_name="work", args=("d",), kwargs={},
                                    options={"redis_message_id": "r-1"}))
    middleware.after_skip_message(broker, deferred)
    assert middleware.flush()  # a worker's buffer thread publishes every FLUSH_EVERY
    assert stats.counters(QUEUE).deferred == 1

    put_back = MessageProxy(Message(queue_name=QUEUE, actor_name="work", args=("p",), kwargs={},
                                    options={"redis_message_id": "r-2"}))
    broker.intake.put_back(QUEUE, [put_back])  # as the pause and draining gates do
    middleware.after_skip_message(broker, put_back)
    assert broker.intake.forget(put_back)  # and its ack is skipped
    assert middleware.flush()
    counters = stats.counters(QUEUE)
    assert (counters.deferred, counters.requeued, counters.failed, counters.completed) == (1, 1, 0, 0)


def test_a_stopping_worker_publishes_what_it_buffered_and_removes_its_running_entries(
    broker: GabayBroker, stats: QueueStats, redis_client: redis.Redis, settings: Settings
) -> None:
    buffer = buffer_of(broker, interval=3600)  # the thread never gets to publish: only the stop does
    buffer.start()
    buffer.count(QUEUE, "completed")
    buffer.count(QUEUE, "completed")
    buffer.count(QUEUE, "deferred")
    buffer.started("r-1", QUEUE, "work", "m-1")
    assert buffer.flush()  # as the thread would: the running job and the counts so far
    assert [job.message_id for job in stats.running_jobs()] == ["m-1"]
    buffer.count(QUEUE, "completed")
    buffer.fail(Failure(queue=QUEUE, actor="work", message_id="m-2", reason="boom", at=time.time()))

    buffer.stop()

    counters = stats.counters(QUEUE)
    assert (counters.completed, counters.failed, counters.deferred, counters.running) == (3, 1, 1, 0)
    assert [f.message_id for f in stats.recent_failures()] == ["m-2"]
    assert sum(c for _, c, _ in stats.throughput(QUEUE, minutes=2)) == 3
    assert stats.running_jobs() == []
    assert not redis_client.exists(settings.keys.running(broker.broker_id))


def test_counts_that_could_not_be_published_are_kept_for_the_next_try_never_doubled(
    broker: GabayBroker, stats: QueueStats, monkeypatch: pytest.MonkeyPatch
) -> None:
    buffer = buffer_of(broker)
    buffer.count(QUEUE, "completed")
    buffer.started("r-1", QUEUE, "work", "m-1")

    def unreachable(*args: object) -> None:
        raise redis.ConnectionError("Redis is down")

    with monkeypatch.context() as patch:
        patch.setattr(StatsWriter, "publish", unreachable)
        assert not buffer.flush()
        buffer.count(QUEUE, "completed")  # meanwhile
    assert buffer.flush()
    assert buffer.flush()  # nothing left: publishes nothing more
    counters = stats.counters(QUEUE)
    assert (counters.completed, counters.running) == (2, 1)
    assert sum(c for _, c, _ in stats.throughput(QUEUE, minutes=2)) == 2


def test_a_publication_applied_whose_reply_was_lost_is_not_counted_again(
    broker: GabayBroker, stats: QueueStats, monkeypatch: pytest.MonkeyPatch
) -> None:
    buffer = buffer_of(broker)
    buffer.count(QUEUE, "completed")
    buffer.fail(Failure(queue=QUEUE, actor="work", message_id="m-1", reason="boom", at=time.time()))
    publish = StatsWriter.publish

    def reply_lost(writer: StatsWriter, *args: object) -> None:
        publish(writer, *args)  # type: ignore[arg-type]
        raise redis.ConnectionError("Connection closed by server.")

    with monkeypatch.context() as patch:
        patch.setattr(StatsWriter, "publish", reply_lost)
        assert not buffer.flush()
        buffer.count(QUEUE, "completed")  # meanwhile
    assert buffer.flush()
    counters = stats.counters(QUEUE)
    assert (counters.completed, counters.failed) == (2, 1)
    assert len(stats.recent_failures()) == 1
