"""Concurrency caps: leases in Redis, then real worker processes (overlap, kills, rate interplay)."""

from __future__ import annotations

import time

import dramatiq
import pytest
import redis

from gabay.cluster.status_reader import StatusReader
from gabay.keys import Keys
from gabay.limits.leases import AGE_LIMIT_MS, Leases, Waiter
from gabay.limits.priority import PRIORITIES
from gabay.queues import GENERATION
from gabay.settings import Settings
from tests.support.limit_checks import (
    MODULES,
    SECOND,
    max_in_any_window,
    max_overlap,
    recorded_runs,
    run_all,
)
from tests.support.polling import stays_true, wait_for

NOW = 1_900_000_000_000  # milliseconds


@pytest.fixture
def leases(redis_client: redis.Redis, settings: Settings) -> Leases:
    leases = Leases(redis_client, settings.keys, lease_ms=400, renew=False, worker_id=WORKER)
    yield leases
    leases.close()


# --- leases and the waiting room -------------------------------------------------------------

WORKER = "w-test"
QUEUE = "cap-test"


def deliver(client: redis.Redis, keys: Keys, token: str, queue: str = QUEUE) -> dramatiq.Message:
    """A message as this process holds it after a fetch: in its acks set, data in the queue."""
    message = dramatiq.Message(queue_name=queue, actor_name="job", args=(token,), kwargs={},
                               options={"redis_message_id": f"id-{token}"})
    client.hset(keys.messages(queue), f"id-{token}", message.encode())
    client.sadd(keys.acks(WORKER, queue), f"id-{token}")
    return message


def handed_to(client: redis.Redis, keys: Keys) -> list[str]:
    """The ids handed a slot and pushed to the head of the queue, in fetch order."""
    return [raw.decode().removeprefix("id-") for raw in client.lrange(keys.queue(QUEUE), 0, -1)]


def test_a_cap_admits_exactly_limit_holders(leases: Leases) -> None:
    held = [leases.acquire("job", 3, now=NOW) for _ in range(4)]
    assert [a.acquired for a in held] == [True, True, True, False]


def test_a_lease_that_is_not_renewed_expires_after_the_lease_time(leases: Leases) -> None:
    assert leases.acquire("job", 1, now=NOW).acquired
    assert not leases.acquire("job", 1, now=NOW + 399).acquired
    assert leases.acquire("job", 1, now=NOW + 400).acquired  # the holder died


def test_a_live_holder_keeps_its_slot_long_after_the_lease_time(leases: Leases,
                                                                redis_client: redis.Redis) -> None:
    leases.renewing = True
    holder = leases.acquire("job", 1)
    assert holder.acquired
    other = Leases(redis_client, leases.redis_keys, lease_ms=400, renew=False)
    assert stays_true(lambda: not other.acquire("job", 1).acquired, 2.0)  # 5 leases
    leases.release("job", holder.member, run_ms=2000, limit=1)
    assert other.acquire("job", 1).acquired
    other.close()


def test_a_released_slot_goes_at_once_to_the_longest_waiting_message(
        leases: Leases, redis_client: redis.Redis) -> None:
    keys = leases.redis_keys
    holder = leases.acquire("job", 1, now=NOW)
    for i, token in enumerate(["first", "second"]):
        message = deliver(redis_client, keys, token)
        assert not leases.acquire("job", 1, message.options["redis_message_id"], now=NOW + i).acquired
        assert leases.park("job", 1, message, Waiter(), now=NOW + i).parked
    assert redis_client.scard(keys.acks(WORKER, QUEUE)) == 0  # they wait in Redis, not here

    assert leases.release("job", holder.member, run_ms=100, limit=1) == 1

    assert handed_to(redis_client, keys) == ["first"]  # at the head of its queue
    newcomer = leases.acquire("job", 1, "id-newcomer")
    assert not newcomer.acquired  # the slot is the first waiter's: no barging
    assert leases.acquire("job", 1, "id-first").acquired
    assert redis_client.zcard(keys.cap_waiting("job")) == 1  # "second" waits on


def test_a_newcomer_queues_behind_waiters_even_when_a_slot_is_free(
        leases: Leases, redis_client: redis.Redis) -> None:
    keys = leases.redis_keys
    leases.acquire("job", 1, now=NOW)
    waiter = deliver(redis_client, keys, "waiter")
    leases.park("job", 1, waiter, Waiter(), now=NOW)
    # The holder dies: its lease lapses without a release, and nobody has handed the slot on yet.
    assert not leases.acquire("job", 1, "id-newcomer", now=NOW + 500).acquired
    assert leases.maintain(now=NOW + 500) == 1
    assert handed_to(redis_client, keys) == ["waiter"]


def test_a_parked_message_that_is_no_longer_this_processs_is_left_alone(
        leases: Leases, redis_client: redis.Redis) -> None:
    keys = leases.redis_keys
    leases.acquire("job", 1, now=NOW)
    message = deliver(redis_client, keys, "gone")
    redis_client.srem(keys.acks(WORKER, QUEUE), "id-gone")  # the recovery gave it to another
    assert not leases.park("job", 1, message, Waiter(), now=NOW).parked
    assert redis_client.zcard(keys.cap_waiting("job")) == 0


def _serve_one(leases: Leases, client: redis.Redis, member: str,
               now: int | None = None) -> tuple[str, str]:
    """Release the cap-1 slot held as ``member``; the token handed it, and its lease."""
    leases.release("job", member, run_ms=10, limit=1, now=now)
    token = client.lpop(leases.redis_keys.queue(QUEUE)).decode().removeprefix("id-")
    return token, leases.acquire("job", 1, f"id-{token}", now=now).member


def _serve_all(leases: Leases, client: redis.Redis, member: str, count: int,
               now: int | None = None) -> list[str]:
    """Release the cap-1 slot ``count`` times; the tokens handed a slot, in order."""
    order = []
    for _ in range(count):
        token, member = _serve_one(leases, client, member, now)
        order.append(token)
    return order


def test_urgent_goes_ahead_of_a_backlog_even_of_its_own_tenant_and_bulk_goes_last(
        leases: Leases, redis_client: redis.Redis) -> None:
    keys = leases.redis_keys
    holder = leases.acquire("job", 1, now=NOW)
    waiters = [("bulk", PRIORITIES["bulk"])] + [(f"normal{i}", 0) for i in range(5)] + [
        ("urgent", PRIORITIES["urgent"])]
    for at, (token, priority) in enumerate(waiters):
        leases.park("job", 1, deliver(redis_client, keys, token),
                    Waiter(tenant="teacher-a", priority=priority), now=NOW + at)
    order = _serve_all(leases, redis_client, holder.member, len(waiters), now=NOW + 100)
    assert order == ["urgent", "normal0", "normal1", "normal2", "normal3", "normal4", "bulk"]


def test_a_message_waiting_ten_minutes_goes_next_whatever_its_rank(
        leases: Leases, redis_client: redis.Redis) -> None:
    keys = leases.redis_keys
    holder = leases.acquire("job", 1, now=NOW)
    leases.park("job", 1, deliver(redis_client, keys, "bulk"), Waiter(priority=PRIORITIES["bulk"]),
                now=NOW)
    for i in range(3):
        leases.park("job", 1, deliver(redis_client, keys, f"urgent{i}"),
                    Waiter(priority=PRIORITIES["urgent"]), now=NOW + AGE_LIMIT_MS)
    order = _serve_all(leases, redis_client, holder.member, 4, now=NOW + AGE_LIMIT_MS)
    assert order == ["bulk", "urgent0", "urgent1", "urgent2"]


def _served_before(leases: Leases, client: redis.Redis, tenants: dict[str, int],
                   latecomer: str) -> int:
    """Park each tenant's backlog, then one message of ``latecomer``; release one slot at a time
    (cap 1) and return how many messages were handed a slot before the latecomer's."""
    keys = leases.redis_keys
    member = leases.acquire("job", 1, now=NOW).member
    for tenant, count in tenants.items():
        for i in range(count):
            leases.park("job", 1, deliver(client, keys, f"{tenant}.{i}"), Waiter(tenant=tenant),
                        now=NOW + i)
    for _ in range(3):  # three of the backlog start before the latecomer arrives
        _, member = _serve_one(leases, client, member, NOW + 5000)
    leases.park("job", 1, deliver(client, keys, f"{latecomer}.0"), Waiter(tenant=latecomer),
                now=NOW + 5000)
    for served in range(sum(tenants.values())):
        token, member = _serve_one(leases, client, member, NOW + 5000)
        if token.startswith(f"{latecomer}."):
            return served
    raise AssertionError("the latecomer was never served")


@pytest.mark.parametrize("backlog", [10, 10_000])
def test_a_tenant_with_one_job_waits_one_round_whatever_the_others_backlog(
        leases: Leases, redis_client: redis.Redis, backlog: int) -> None:
    served = _served_before(leases, redis_client, {"teacher-a": backlog}, latecomer="teacher-b")
    assert served <= 1, f"{served} of teacher A's jobs went first"


def test_sharding_a_backlog_over_many_tenant_keys_buys_one_turn_per_key(
        leases: Leases, redis_client: redis.Redis) -> None:
    shards = {f"shard-{i:03}": 20 for i in range(100)}
    served = _served_before(leases, redis_client, shards, latecomer="teacher-b")
    assert served <= 100  # one round: a turn per backlogged key, not their 2,000 jobs


def test_a_weight_of_two_takes_two_turns_per_round(leases: Leases, redis_client: redis.Redis) -> None:
    keys = leases.redis_keys
    holder = leases.acquire("job", 1, now=NOW)
    for i in range(6):
        leases.park("job", 1, deliver(redis_client, keys, f"heavy.{i}"),
                    Waiter(tenant="heavy", weight=2), now=NOW)
        leases.park("job", 1, deliver(redis_client, keys, f"light.{i}"), Waiter(tenant="light"),
                    now=NOW)
    order = _serve_all(leases, redis_client, holder.member, 9, now=NOW)
    assert sum(t.startswith("heavy") for t in order) == 6  # 2:1 in the first nine


def test_the_status_counts_waiting_messages_per_priority_and_tenant(
        leases: Leases, redis_client: redis.Redis, settings: Settings) -> None:
    keys = leases.redis_keys
    holder = leases.acquire("job", 1)
    for token, tenant, priority in [("a1", "teacher-a", 0), ("a2", "teacher-a", 0),
                                    ("b1", "teacher-b", PRIORITIES["urgent"])]:
        leases.park("job", 1, deliver(redis_client, keys, token, queue=GENERATION),
                    Waiter(tenant=tenant, priority=priority))

    held = StatusReader(settings, redis_client).read().per_queue[GENERATION]
    assert (held.held, held.held_tenants) == (3, 2)
    assert held.held_by_priority == {"normal": 2, "urgent": 1}
    assert held.held_by_tenant == {"teacher-a": 2, "teacher-b": 1}

    leases.release("job", holder.member, run_ms=10, limit=1)  # the urgent one is handed the slot
    held = StatusReader(settings, redis_client).read().per_queue[GENERATION]
    assert held.held_by_priority == {"normal": 2} and held.held_by_tenant == {"teacher-a": 2}


def test_closing_gives_back_every_slot(leases: Leases, redis_client: redis.Redis) -> None:
    assert leases.acquire("job", 2).acquired
    assert redis_client.zcard(leases.keys("job")[0]) == 1
    leases.close()
    assert redis_client.zcard(leases.keys("job")[0]) == 0


# --- real worker processes ------------------------------------------------------------------

@pytest.mark.slow
def test_two_processes_never_run_more_than_the_cap_at_once(
        start_workers, broker, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    from tests.support.limit_actors import LIMITS_QUEUE, capped_two

    start_workers(processes=2, threads=4, queues=(LIMITS_QUEUE,), modules=MODULES)
    for i in range(12):
        capped_two.send(f"c{i}", 0.3)
    runs = run_all(broker, redis_client, 12, timeout=90)

    assert sorted(run["token"] for run in runs) == sorted(f"c{i}" for i in range(12))
    assert max_overlap([(run["start"], run["end"]) for run in runs]) == 2
    assert all(run["retries"] == 0 for run in runs)
    assert redis_client.zcard(broker.settings.keys.dead_letters(LIMITS_QUEUE)) == 0
    # every slot was given back
    assert redis_client.zcard(broker.settings.keys.cap_holders("capped_two")) == 0


@pytest.mark.slow
def test_the_slot_of_a_killed_worker_comes_back_within_the_lease(
        start_workers, broker, redis_client: redis.Redis,
        settings: Settings) -> None:  # type: ignore[no-untyped-def]
    from tests.support.limit_actors import LIMITS_QUEUE, capped_one

    started_key = settings.keys.test("cap-one-started")
    doomed = start_workers(processes=1, threads=2, queues=(LIMITS_QUEUE,), modules=MODULES)
    capped_one.send("holder", 600)
    wait_for(lambda: redis_client.llen(started_key) == 1, timeout=30, message="the holder to start")
    start_workers(processes=1, threads=2, queues=(LIMITS_QUEUE,), modules=MODULES)
    capped_one.send("next", 0.1)
    lease = settings.heartbeat_timeout
    # The holder outlives its lease several times over and keeps its slot.
    assert stays_true(lambda: redis_client.llen(started_key) == 1, 2 * lease)

    doomed.kill()
    killed = time.time()
    wait_for(lambda: redis_client.llen(started_key) >= 2, timeout=lease + 20,
             message="a capped message to start after the kill")
    _token, started = redis_client.lindex(started_key, 1).decode().rsplit(":", 1)
    delay = float(started) - killed
    assert delay <= lease + 5, f"slot came back {delay:.1f} s after the kill"
    runs = run_all(broker, redis_client, 2, timeout=60)  # "next" and the requeued holder
    assert sorted(run["token"] for run in runs) == ["holder", "next"]
    assert max_overlap([(run["start"], run["end"]) for run in runs]) == 1


@pytest.mark.slow
def test_both_limits_together_hold_and_defer_without_retries(
        start_workers, broker, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    from tests.support.limit_actors import LIMITS_QUEUE, rate_and_cap

    start_workers(processes=2, threads=4, queues=(LIMITS_QUEUE,), modules=MODULES)
    for i in range(15):
        rate_and_cap.send(f"b{i}", 0.4)
    runs = run_all(broker, redis_client, 15, timeout=90)

    assert sorted(run["token"] for run in runs) == sorted(f"b{i}" for i in range(15))
    assert max_overlap([(run["start"], run["end"]) for run in runs]) <= 2
    assert max_in_any_window([run["limiter_start_us"] for run in runs], 2 * SECOND) <= 5
    assert all(run["retries"] == 0 for run in runs)
    assert redis_client.zcard(broker.settings.keys.dead_letters(LIMITS_QUEUE)) == 0
    assert redis_client.zcard(broker.settings.keys.cap_holders("rate_and_cap")) == 0
    assert len(recorded_runs(redis_client)) == 15
