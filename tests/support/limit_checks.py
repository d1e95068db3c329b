"""What the rate-limit and concurrency-cap checks (tests and benchmarks) read and compute.

The arithmetic needs nothing but numbers; the readers import the test actors only when called,
so that a benchmark can use the arithmetic without binding gabay's broker.
"""

from __future__ import annotations

import json

import redis
from dramatiq.brokers.redis import RedisBroker

from tests.support.polling import wait_for

SECOND = 1_000_000  # microseconds
MODULES = ("tests.support.actors", "tests.support.limit_actors")


def max_in_any_window(starts: list[float], window: float) -> int:
    """Largest number of starts inside one half-open window [t, t + window) (t = each start)."""
    starts = sorted(starts)
    best, j = 0, 0
    for i, t in enumerate(starts):
        while starts[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Largest number of intervals running at one instant (an end frees before a start takes)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = best = 0
    for _, change in events:
        running += change
        best = max(best, running)
    return best


def recorded_runs(client: redis.Redis) -> list[dict]:
    from tests.support.limit_actors import RUNS_KEY

    return [json.loads(raw) for raw in client.lrange(RUNS_KEY, 0, -1)]


def run_all(broker: RedisBroker, client: redis.Redis, count: int, timeout: float) -> list[dict]:
    """Wait until ``count`` runs were recorded and nothing of the test queue is left."""
    from tests.support.limit_actors import LIMITS_QUEUE

    wait_for(lambda: len(recorded_runs(client)) >= count, timeout=timeout,
             message=f"{count} limited runs")
    broker.join(LIMITS_QUEUE, timeout=int(timeout * 1000))
    return recorded_runs(client)
