"""Benchmark: no-op throughput through gabay's full middleware stack against plain Dramatiq.

Same Redis, same run, 1 worker process x 8 threads each time. Variants: plain Dramatiq (RedisBroker
with its default middleware minus Prometheus), gabay with a no-op actor (no limit option), gabay
with ``max_concurrency=1000`` (never binds: shows the cost of leases) and gabay with
``rate_limit="100000/1s"`` (never binds: shows the cost of the window script).

Each run enqueues the same number of messages first, then starts the worker. The first
``WARMUP`` acknowledgements (process start, first connections) are not timed: the clock runs from
the ``WARMUP``-th acknowledged message to the last. Every round runs every variant once, in a
rotated order so that no variant always runs first on a machine shared with other work; the
median rate of the rounds is printed (with the lowest and highest) and its ratio to plain
Dramatiq's median. No assertions.

Run: ``.venv/bin/python bench/bench_throughput.py [rounds]`` (default 5 rounds; uses Redis
database 9 and flushes it). This file is also the worker module: ``dramatiq ...
bench.bench_throughput`` with BENCH_MODE set.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as ``python bench/<file>``

import dramatiq
import redis

from bench.common import MODE, enqueue, modules, namespace_of, plain_broker, worker_env, workers
from tests.support.polling import wait_for

REDIS_URL = "redis://127.0.0.1:6379/9"
MESSAGES = 10_000
WARMUP = 1_000
ROUNDS = 5

if MODE == "gabay":
    import gabay.actors  # noqa: F401  (sets the gabay broker)

    @dramatiq.actor(queue_name="bench-noop")
    def noop() -> None:
        """Nothing: the cost measured is the middleware's."""

    @dramatiq.actor(queue_name="bench-capped", max_concurrency=1000)
    def noop_capped() -> None:
        """Nothing, under a cap that never binds."""

    @dramatiq.actor(queue_name="bench-rated", rate_limit="100000/1s")
    def noop_rated() -> None:
        """Nothing, under a rate limit that never binds."""

elif MODE == "plain":
    dramatiq.set_broker(plain_broker(REDIS_URL))

    @dramatiq.actor(queue_name="bench-noop")
    def noop() -> None:
        """Nothing."""


VARIANTS = {  # name -> (mode, queue, actor)
    "dramatiq": ("plain", "bench-noop", "noop"),
    "gabay": ("gabay", "bench-noop", "noop"),
    "gabay capped": ("gabay", "bench-capped", "noop_capped"),
    "gabay rate-limited": ("gabay", "bench-rated", "noop_rated"),
}


def measure(client: redis.Redis, name: str) -> float:
    """Messages per second for one variant."""
    mode, queue, actor = VARIANTS[name]
    namespace = namespace_of(mode)
    client.flushdb()
    enqueue(REDIS_URL, namespace, queue, actor, [()] * MESSAGES)
    msgs = f"{namespace}:{queue}.msgs"
    with workers(f"throughput-{mode}", modules(mode, "bench.bench_throughput"),
                 worker_env(REDIS_URL, BENCH_MODE=mode), processes=1, threads=8,
                 queues=(queue,)).start(client, namespace):
        wait_for(lambda: client.hlen(msgs) <= MESSAGES - WARMUP, timeout=120, interval=0.002,
                 message=f"{WARMUP} warm-up acknowledgements")
        timed = client.hlen(msgs)  # about MESSAGES - WARMUP: the messages the clock runs for
        began = time.perf_counter()
        wait_for(lambda: client.hlen(msgs) == 0, timeout=600, interval=0.005,
                 message="the last acknowledgement")
        elapsed = time.perf_counter() - began
    return timed / elapsed


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS
    client = redis.Redis.from_url(REDIS_URL)
    names = list(VARIANTS)
    rates: dict[str, list[float]] = {name: [] for name in names}
    try:
        for i in range(rounds):
            for name in names[i % len(names):] + names[:i % len(names)]:
                rates[name].append(measure(client, name))
    finally:
        client.flushdb()
    print(f"{MESSAGES} no-op messages ({WARMUP} untimed warm-up), 1 process x 8 threads, "
          f"median of {rounds} rounds")
    plain = statistics.median(rates["dramatiq"])
    for name in names:
        median = statistics.median(rates[name])
        print(f"{name:20} {median:8.0f} msg/s  (range {min(rates[name]):5.0f}-{max(rates[name]):5.0f})"
              f"   {median / plain:.2f} x dramatiq")


if __name__ == "__main__":
    main()
