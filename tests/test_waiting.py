"""Who runs next, with real worker processes: due times, hand-offs, priorities and fair share."""

from __future__ import annotations

from itertools import pairwise

import dramatiq
import pytest
import redis

from gabay.broker import GabayBroker
from tests.support.limit_checks import MODULES, recorded_runs, run_all
from tests.support.polling import wait_for


def _starts(client: redis.Redis) -> list[tuple[float, str]]:
    return sorted((run["start"], run["token"]) for run in recorded_runs(client))


def test_a_short_retry_behind_ten_thousand_long_deferrals_runs_on_time(
        start_workers, broker: GabayBroker, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    from tests.support.limit_actors import LIMITS_QUEUE, fails_first, unlimited

    # 10,000 messages of the same queue wait an hour in the due set.
    pipe = redis_client.pipeline(transaction=False)
    for i in range(10_000):
        message = unlimited.message(f"later{i}").copy(options={"redis_message_id": f"later-{i}"})
        pipe.hset(broker.settings.keys.messages(LIMITS_QUEUE), f"later-{i}", message.encode())
        pipe.zadd(broker.settings.keys.due(LIMITS_QUEUE), {f"later-{i}": 4_000_000_000_000})
    pipe.execute()
    start_workers(processes=1, threads=2, queues=(LIMITS_QUEUE,), modules=MODULES)

    fails_first.send("soon")
    wait_for(lambda: len(recorded_runs(redis_client)) == 2, timeout=30, message="the retry")

    first, retry = sorted(recorded_runs(redis_client), key=lambda run: run["start"])
    assert first["failed"] and retry["retries"] == 1
    # Dramatiq's backoff for min_backoff=max_backoff=100 ms is 50-100 ms; then at most 200 ms late.
    assert retry["start"] - first["end"] <= 0.1 + 0.2, retry["start"] - first["end"]
    assert redis_client.zcard(broker.settings.keys.due(LIMITS_QUEUE)) == 10_000  # still waiting


def test_a_released_slot_starts_the_next_waiting_message_at_once(
        start_workers, broker: GabayBroker, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    from tests.support.limit_actors import LIMITS_QUEUE, fair_mutex

    start_workers(processes=2, threads=2, queues=(LIMITS_QUEUE,), modules=MODULES)
    for i in range(4):  # each runs long enough for idle consumers to poll only once a second
        fair_mutex.send(f"t.{i}", 1.2)
    runs = sorted(run_all(broker, redis_client, 4, timeout=60), key=lambda run: run["start"])

    gaps = [later["start"] - earlier["end"] for earlier, later in pairwise(runs)]
    assert min(gaps) >= 0  # never two at once
    # Handed over, not polled for: the next one starts within a few tens of milliseconds.
    assert max(gaps) < 0.25, gaps
    assert all(run["retries"] == 0 for run in runs)
    assert redis_client.zcard(broker.settings.keys.cap_waiting("fair_mutex")) == 0


@pytest.mark.slow
def test_urgent_starts_in_the_next_free_slot_behind_a_backlog_across_processes(
        start_workers, broker: GabayBroker, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    from tests.support.limit_actors import LIMITS_QUEUE, fair_mutex

    start_workers(processes=2, threads=2, queues=(LIMITS_QUEUE,), modules=MODULES)
    for i in range(30):
        fair_mutex.send(f"t.{i}", 0.1)
    waiting = broker.settings.keys.cap_waiting("fair_mutex")
    wait_for(lambda: redis_client.zcard(waiting) >= 20, timeout=20, message="the backlog to wait")
    fair_mutex.send_with_options(args=("t.urgent", 0.1), priority="urgent")

    runs = run_all(broker, redis_client, 31, timeout=60)
    order = [token for _, token in sorted((run["start"], run["token"]) for run in runs)]
    started_before = len([r for r in runs if r["start"] < next(
        run["start"] for run in runs if run["token"] == "t.urgent")])
    # Whatever ran or had been handed a slot when it arrived, it goes next.
    assert started_before <= 30 - 20 + 2, order


@pytest.mark.slow
def test_a_teacher_with_one_submission_does_not_wait_for_anothers_backlog(
        start_workers, broker: GabayBroker, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    from tests.support.limit_actors import LIMITS_QUEUE, fair_mutex

    start_workers(processes=2, threads=2, queues=(LIMITS_QUEUE,), modules=MODULES)
    for i in range(40):
        fair_mutex.send(f"teacher-a.{i}", 0.05)
    waiting = broker.settings.keys.cap_waiting("fair_mutex")
    wait_for(lambda: redis_client.zcard(waiting) >= 30, timeout=20, message="the backlog to wait")
    fair_mutex.send("teacher-b.0", 0.05)

    runs = run_all(broker, redis_client, 41, timeout=60)
    b_start = next(run["start"] for run in runs if run["token"] == "teacher-b.0")
    a_waiting_then = [r for r in runs if r["token"].startswith("teacher-a") and r["start"] > b_start]
    assert len(a_waiting_then) >= 25, "teacher B's single job waited behind teacher A's backlog"


def test_an_invalid_priority_fails_the_send_with_one_line(broker: GabayBroker,
                                                          redis_client: redis.Redis) -> None:
    from tests.support.limit_actors import unlimited

    with pytest.raises(ValueError, match="priority must be one of urgent, high, normal"):
        unlimited.send_with_options(args=("x",), priority="asap")


def test_a_delayed_send_waits_in_the_due_set_not_in_dramatiqs_delay_queue(
        broker: GabayBroker, redis_client: redis.Redis) -> None:
    from tests.support.limit_actors import LIMITS_QUEUE, unlimited

    sent = unlimited.send_with_options(args=("later",), delay=60_000)
    keys = broker.settings.keys
    redis_id = sent.options["redis_message_id"]
    due_at = redis_client.zscore(keys.due(LIMITS_QUEUE), redis_id)
    now_ms = broker.clock.now_ms()
    assert due_at is not None and 59_000 < due_at - now_ms <= 60_000
    stored = dramatiq.Message.decode(redis_client.hget(keys.messages(LIMITS_QUEUE), redis_id))
    assert stored.args == ("later",) and "eta" not in stored.options
    assert redis_client.hlen(keys.delayed_messages(LIMITS_QUEUE)) == 0
