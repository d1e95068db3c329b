"""Rate limits: the window arithmetic, its Redis script, a simulated backlog, real workers."""

from __future__ import annotations

import datetime as dt
import heapq
import random
import threading
import time

import pytest
import redis
from freezegun import freeze_time

from gabay.limits.rates import Rate, parse_rate
from gabay.limits.waiting import HOLD_MS, deferral_delay, should_hold
from gabay.limits.window import RedisWindow, WindowState, decide, margin_us
from gabay.settings import Settings
from tests.support.limit_checks import MODULES, SECOND, max_in_any_window, run_all

T0 = dt.datetime(2030, 1, 1, 12, 0, 0)


# --- the arithmetic, with a frozen clock --------------------------------------------------------

def test_n_starts_at_once_then_the_next_exactly_one_window_after_the_first() -> None:
    state = WindowState()
    with freeze_time(T0) as clock:
        assert all(decide(state, 5, 2 * SECOND, f"m{i}").started for i in range(5))
        sixth = decide(state, 5, 2 * SECOND, "m5")
        assert not sixth.started
        assert sixth.wait_ms == 2000
        clock.tick(dt.timedelta(microseconds=2 * SECOND - 1))
        assert not decide(state, 5, 2 * SECOND, "m5", reserved=sixth.reserved).started
        clock.tick(dt.timedelta(microseconds=1))
        assert decide(state, 5, 2 * SECOND, "m5", reserved=sixth.reserved).started


def test_the_window_slides_instead_of_resetting_on_calendar_seconds() -> None:
    state = WindowState()
    with freeze_time(T0) as clock:
        for _ in range(5):  # one start every 400 ms: 0.0, 0.4, 0.8, 1.2, 1.6
            assert decide(state, 5, 2 * SECOND, "x").started
            clock.tick(0.4)
        assert decide(state, 5, 2 * SECOND, "x").started  # at 2.0, the start at 0.0 left
        clock.tick(0.1)  # 2.1: the start at 0.4 is still inside (0.1, 2.1]
        late = decide(state, 5, 2 * SECOND, "y")
        assert not late.started
        assert late.wait_ms == pytest.approx(300)


def test_a_backlog_reserves_turns_spread_at_the_limits_pace() -> None:
    state = WindowState()
    with freeze_time(T0):
        decisions = [decide(state, 5, 2 * SECOND, f"m{i}") for i in range(12)]
    assert [d.started for d in decisions] == [True] * 5 + [False] * 7
    assert [round(d.wait_ms) for d in decisions[5:]] == [2000] * 5 + [4000] * 2
    assert len(state.schedule) == 5 and len(state.starts) == 5  # memory O(limit)


def test_a_reservation_is_not_a_start_and_a_late_comer_waits_for_room() -> None:
    state = WindowState()  # 1 start per 2 s
    with freeze_time(T0) as clock:
        assert decide(state, 1, 2 * SECOND, "a").started
        b = decide(state, 1, 2 * SECOND, "b")  # reserved for T0 + 2 s
        c = decide(state, 1, 2 * SECOND, "c")  # reserved for T0 + 4 s
        assert (b.wait_ms, c.wait_ms) == (2000, 4000)
        clock.tick(3.0)
        assert decide(state, 1, 2 * SECOND, "b", reserved=b.reserved).started  # 1 s late
        clock.tick(1.0)  # at T0 + 4 s the window still holds b's late start at T0 + 3 s
        again = decide(state, 1, 2 * SECOND, "c", reserved=c.reserved)
        assert not again.started
        assert again.wait_ms == 1000  # until T0 + 5 s, keeping its reservation
        assert again.reserved == c.reserved


def test_a_late_comer_without_room_soon_reserves_again_instead_of_joining_a_crowd() -> None:
    state = WindowState()
    with freeze_time(T0) as clock:
        for i in range(10):
            decide(state, 5, 2 * SECOND, f"m{i}")  # five start, five reserved for T0 + 2 s
        late = decide(state, 5, 2 * SECOND, "z")  # reserved for T0 + 4 s
        clock.tick(3.0)
        for i in range(5):  # meanwhile five others started at T0 + 3 s
            assert decide(state, 5, 2 * SECOND, f"m{i + 5}", reserved=2 * SECOND + late.now).started
        clock.tick(1.5)  # back at T0 + 4.5 s: no room before T0 + 5 s
        patient = decide(state, 5, 2 * SECOND, "z", reserved=late.reserved, patience_us=SECOND)
        assert not patient.started and patient.reserved == late.reserved
        assert patient.wait_ms == 500
        hurried = decide(state, 5, 2 * SECOND, "z", reserved=late.reserved, patience_us=100_000)
        assert not hurried.started and hurried.reserved > late.reserved  # a new place
        assert hurried.reserved == hurried.at  # the place now counts in the schedule


def test_waiting_policy_holds_short_waits_and_defers_long_ones_to_come_back_early() -> None:
    assert should_hold(500, budget_ms=HOLD_MS)
    assert not should_hold(500, budget_ms=100)
    assert not should_hold(HOLD_MS + 1, budget_ms=10 * HOLD_MS)
    assert deferral_delay(60_000) < 60_000 and deferral_delay(60_000) >= 60_000 - HOLD_MS
    assert deferral_delay(300) == 300


# --- the Lua script agrees with the reference and keeps the invariant under concurrency -------

@pytest.fixture
def window(redis_client: redis.Redis, settings: Settings) -> RedisWindow:
    return RedisWindow(redis_client, settings.keys)


def test_the_redis_script_takes_the_same_decisions_as_the_reference(window: RedisWindow) -> None:
    rng = random.Random(7)
    rate = Rate(limit=4, window_seconds=1.5)
    state, reservations = WindowState(), {}
    now = 1_900_000_000 * SECOND
    for step in range(600):
        now += rng.choice([0, 0, 1, 999, 50_000, 400_000, 1_600_000])
        member = f"m{rng.randrange(40)}"
        reserved = reservations.get(member) if rng.random() < 0.8 else None
        patience = rng.choice([None, 0, 300_000, 2 * SECOND])
        expected = decide(state, rate.limit, 1_500_000 + margin_us(rate), member, reserved, now,
                          patience)
        actual = window.try_start("diff", rate, member, reserved, now, patience)
        assert actual == expected, f"step {step}"
        reservations[member] = None if actual.started else actual.reserved


def test_concurrent_starters_never_exceed_the_window(window: RedisWindow,
                                                     redis_client: redis.Redis) -> None:
    rate = parse_rate("5/0.3s")
    starts: list[int] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 1.5

    def starter(name: str) -> None:
        reserved = None
        while time.monotonic() < deadline:
            decision = window.try_start("busy", rate, name, reserved)
            if decision.started:
                with lock:
                    starts.append(decision.now)
                reserved = None
            else:
                reserved = decision.reserved
                time.sleep(decision.wait_ms / 1000)

    threads = [threading.Thread(target=starter, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max_in_any_window(starts, 300_000) == 5
    assert len(starts) >= 5 * 1.5 / 0.3 * 0.8
    assert redis_client.zcard(window.keys("busy")[0]) <= 5
    assert redis_client.zcard(window.keys("busy")[1]) <= 5


def test_the_window_holds_on_the_clock_of_whoever_receives_the_calls(window: RedisWindow) -> None:
    """Each job's first line comes a little after the limiter's decision (up to 15 ms here):
    the margin keeps every window of the job's own clock at the limit too."""
    rate = parse_rate("10/s")
    rng = random.Random(3)
    now, reserved, seen_by_jobs = 1_900_000_000 * SECOND, None, []
    while len(seen_by_jobs) < 200:
        decision = window.try_start("outside", rate, f"m{len(seen_by_jobs)}", reserved, now,
                                    patience_us=2 * SECOND)
        if decision.started:
            seen_by_jobs.append(decision.now + rng.randrange(0, 15_000))
            reserved = None
        else:
            reserved = decision.reserved
            now = decision.at
    assert max_in_any_window(seen_by_jobs, SECOND) == 10
    spread = (max(seen_by_jobs) - min(seen_by_jobs)) / SECOND
    assert (len(seen_by_jobs) - 10) / spread >= 10 * 0.97  # at least 97 % of the rate


def simulate_backlog(window: RedisWindow, rate: Rate, count: int, rng: random.Random
                     ) -> tuple[list[int], list[int]]:
    """Deliver ``count`` messages at once through the middleware's policy on a simulated clock.

    Each delivery follows RateLimits: hold in the thread within the budget, else defer to come
    back early, the delay queue adding a random 0-2 s latency. Returns start times and the
    number of deferrals of each message.
    """
    clock = 1_900_000_000 * SECOND
    deliveries = [(clock + i * 200, i, None) for i in range(count)]  # 5 k messages a second
    heapq.heapify(deliveries)
    starts, deferrals = [], [0] * count
    while deliveries:
        now, i, reserved = heapq.heappop(deliveries)
        budget_ms = float(HOLD_MS)
        while True:
            decision = window.try_start("sim", rate, f"msg{i}", reserved, now,
                                        patience_us=round(budget_ms * 1000))
            if decision.started:
                starts.append(decision.now)
                break
            reserved = decision.reserved
            if not should_hold(decision.wait_ms, budget_ms):
                deferrals[i] += 1
                latency = rng.randrange(0, 2 * SECOND)
                back = now + deferral_delay(decision.wait_ms) * 1000 + latency
                heapq.heappush(deliveries, (back, i, reserved))
                break
            budget_ms -= decision.wait_ms
            now = decision.at + rng.randrange(0, 3000)  # the thread wakes up a little late
    return starts, deferrals


def test_a_backlog_of_ten_thousand_is_spread_without_a_storm_of_redeferrals(
        window: RedisWindow, redis_client: redis.Redis) -> None:
    rate = parse_rate("10/m")
    starts, deferrals = simulate_backlog(window, rate, 10_000, random.Random(1))
    assert len(starts) == 10_000
    assert max_in_any_window(starts, 60 * SECOND) == 10
    achieved = (len(starts) - 10) / ((max(starts) - min(starts)) / SECOND) / (10 / 60)
    assert achieved >= 0.97
    assert sum(deferrals) / len(deferrals) <= 1.5
    assert max(deferrals) <= 4
    assert redis_client.zcard(window.keys("sim")[0]) <= 10
    assert redis_client.zcard(window.keys("sim")[1]) <= 10


# --- real worker processes --------------------------------------------------------------------

@pytest.mark.slow
def test_workers_on_two_processes_never_exceed_the_limit_in_any_window(
        start_workers, broker, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    from tests.support.limit_actors import LIMITS_QUEUE, rate_limited

    start_workers(processes=2, threads=4, queues=(LIMITS_QUEUE,), modules=MODULES)
    for i in range(20):
        rate_limited.send(f"r{i}")
    runs = run_all(broker, redis_client, 20, timeout=90)

    assert sorted(run["token"] for run in runs) == sorted(f"r{i}" for i in range(20))  # once each
    assert len({run["pid"] for run in runs}) == 2
    limiter_starts = [run["limiter_start_us"] for run in runs]
    assert max_in_any_window(limiter_starts, 2 * SECOND) == 5  # exact, on the limiter's clock
    actor_starts = [run["start"] for run in runs]
    assert max_in_any_window(actor_starts, 2.0 - 0.1) <= 5  # as seen inside the actor
    assert all(run["retries"] == 0 for run in runs)
    assert redis_client.zcard(broker.settings.keys.dead_letters(LIMITS_QUEUE)) == 0
    span = (max(limiter_starts) - min(limiter_starts)) / SECOND
    achieved = (len(runs) - 5) / span / (5 / 2)
    assert achieved >= 0.8, f"achieved {achieved:.2f} of the limit"
    assert sum(run["deferrals"] for run in runs) / len(runs) <= 2


@pytest.mark.slow
def test_actors_without_a_limit_touch_no_limiter_key(
        start_workers, broker, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    from tests.support.limit_actors import LIMITS_QUEUE, unlimited

    start_workers(processes=1, threads=2, queues=(LIMITS_QUEUE,), modules=MODULES)
    for i in range(5):
        unlimited.send(f"u{i}")
    runs = run_all(broker, redis_client, 5, timeout=30)
    assert all(run["deferrals"] == 0 for run in runs)
    assert not list(redis_client.scan_iter(match="gabay:rate:*"))
    assert not list(redis_client.scan_iter(match="gabay:cap:*"))
