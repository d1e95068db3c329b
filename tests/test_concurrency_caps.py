"""Concurrency caps: leases in Redis, then real worker processes (overlap, kills, rate interplay)."""

from __future__ import annotations

import heapq
import random
import threading
import time

import pytest
import redis

from gabay.limits.leases import Leases
from gabay.limits.waiting import HOLD_MS, LEAD_MS, deferral_delay
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
    leases = Leases(redis_client, settings.keys, lease_ms=400, renew=False)
    yield leases
    leases.close()


# --- leases ---------------------------------------------------------------------------------

def test_a_cap_admits_exactly_limit_holders(leases: Leases) -> None:
    held = [leases.acquire("job", 3, reserve=False, now=NOW) for _ in range(4)]
    assert [a.acquired for a in held] == [True, True, True, False]
    assert held[3].wait_ms > 0


def test_a_lease_that_is_not_renewed_expires_after_the_lease_time(leases: Leases) -> None:
    assert leases.acquire("job", 1, reserve=False, now=NOW).acquired
    assert not leases.acquire("job", 1, reserve=False, now=NOW + 399).acquired
    assert leases.acquire("job", 1, reserve=False, now=NOW + 400).acquired  # the holder died


def test_a_live_holder_keeps_its_slot_long_after_the_lease_time(leases: Leases,
                                                                redis_client: redis.Redis) -> None:
    leases.renewing = True
    holder = leases.acquire("job", 1, reserve=False)
    assert holder.acquired
    other = Leases(redis_client, leases.redis_keys, lease_ms=400, renew=False)
    assert stays_true(lambda: not other.acquire("job", 1, reserve=False).acquired, 2.0)  # 5 leases
    leases.release("job", holder.member, run_ms=2000, limit=1)
    assert other.acquire("job", 1, reserve=False).acquired
    other.close()


def test_a_release_wakes_one_waiter_at_once(leases: Leases, redis_client: redis.Redis) -> None:
    holder = leases.acquire("job", 1, reserve=False)
    woke: list[float] = []
    waiter = threading.Thread(target=lambda: woke.append(
        time.monotonic() if leases.wait_for_release("job", 5000) else 0.0))
    waiter.start()
    wait_for(lambda: redis_client.info("clients")["blocked_clients"] >= 1, timeout=5,
             message="the waiter to block on the wake-up list")
    released = time.monotonic()
    leases.release("job", holder.member, run_ms=200, limit=1)
    waiter.join()
    assert woke and 0 < woke[0] - released < 0.5


def test_a_full_cap_spreads_reservations_at_the_pace_slots_free(leases: Leases) -> None:
    for _ in range(3):
        member = leases.acquire("job", 3, reserve=False, now=NOW).member
        leases.release("job", member, run_ms=900, limit=3)  # average run: 900 ms
    for _ in range(3):
        assert leases.acquire("job", 3, reserve=False, now=NOW).acquired
    turns = [leases.acquire("job", 3, reserve=True, now=NOW).at - NOW for _ in range(4)]
    assert turns == [300, 600, 900, 1200]  # one slot frees every 900 / 3 ms


def test_closing_gives_back_every_slot(leases: Leases, redis_client: redis.Redis) -> None:
    assert leases.acquire("job", 2, reserve=False).acquired
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


def simulate_capped_backlog(leases: Leases, count: int, limit: int, run_ms: int,
                            rng: random.Random) -> tuple[list[tuple[int, int]], list[int]]:
    """Deliver ``count`` capped messages at once through ConcurrencyCaps' policy, simulated clock.

    Mirrors ``ConcurrencyCaps._take_slot``: wait in the thread for a release (woken one at a
    time, in order) when the turn is near, else reserve a turn and defer, the delay queue adding
    0-2 s of latency. Returns the (start, end) of every run and the deferrals of each message.
    """
    events: list[tuple[int, int, str, int, int | None]] = []  # time, seq, kind, message, reserved
    seq = iter(range(10**9))
    for i in range(count):
        heapq.heappush(events, (NOW + i // 5, next(seq), "deliver", i, None))
    waiting: dict[int, tuple[int, int | None]] = {}  # message -> (deadline, reserved), wake order
    woken: dict[int, int] = {}  # message -> its deadline, while a wake-up is on its way
    reserved_of: dict[int, int | None] = {}
    members: dict[int, str] = {}
    runs: list[tuple[int, int]] = []
    deferrals = [0] * count
    while events:
        now, _, kind, i, reserved = heapq.heappop(events)
        if kind == "end":
            leases.release("sim", members.pop(i), run_ms=run_ms, limit=limit)
            if waiting:  # the release wakes the longest waiter
                j = next(iter(waiting))
                woken[j] = waiting.pop(j)[0]
                heapq.heappush(events, (now + 1, next(seq), "woken", j, reserved_of[j]))
            continue
        if kind == "timeout" and i not in waiting:
            continue  # woken before its deadline
        deadline = waiting.pop(i, (woken.pop(i, now + HOLD_MS), None))[0]
        reserved_of[i] = reserved
        reserve = kind == "timeout"
        attempt = leases.acquire("sim", limit, reserve=reserve, now=now)
        my_turn = reserved is not None and reserved <= now + LEAD_MS
        if attempt.acquired:
            took = run_ms + rng.randrange(-run_ms // 5, run_ms // 5)
            members[i] = attempt.member
            runs.append((now, now + took))
            heapq.heappush(events, (now + took, next(seq), "end", i, None))
        elif not reserve and deadline > now and (my_turn or attempt.wait_ms <= HOLD_MS):
            waiting[i] = (deadline, reserved)
            heapq.heappush(events, (deadline, next(seq), "timeout", i, reserved))
        else:
            if not reserve:
                attempt = leases.acquire("sim", limit, reserve=True, now=now)
            if attempt.acquired:  # cannot happen: nothing released in between
                raise AssertionError("slot appeared without a release")
            deferrals[i] += 1
            back = now + deferral_delay(attempt.wait_ms) + rng.randrange(0, 2000)
            heapq.heappush(events, (back, next(seq), "deliver", i, attempt.at))
    return runs, deferrals


def test_a_capped_backlog_of_ten_thousand_runs_without_a_storm_of_redeferrals(
        redis_client: redis.Redis, settings: Settings) -> None:
    leases = Leases(redis_client, settings.keys, lease_ms=3_600_000, renew=False)
    runs, deferrals = simulate_capped_backlog(leases, 10_000, limit=3, run_ms=1000,
                                              rng=random.Random(3))
    assert len(runs) == 10_000
    assert max_overlap([(start, end - 0.5) for start, end in runs]) == 3
    busy = sum(end - start for start, end in runs) / 3
    span = max(end for _, end in runs) - min(start for start, _ in runs)
    assert busy / span >= 0.9, f"slots busy {busy / span:.2f} of the time"
    assert sum(deferrals) / len(deferrals) <= 2, f"mean deferrals {sum(deferrals) / len(deferrals)}"
    assert redis_client.zcard(leases.keys("sim")[0]) == 0
