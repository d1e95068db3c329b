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

Run: ``/work/venv/bin/python bench/bench_throughput.py [rounds]`` (default 5 rounds; uses Redis
database 8 and flushes it). This file is also the worker module: ``dramatiq ...
bench.bench_throughput`` with BENCH_MODE set.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

REDIS_URL = "redis://127.0.0.1:6379/8"
MESSAGES = 10_000
WARMUP = 1_000
ROUNDS = 5
MODE = os.environ.get("BENCH_MODE")

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
    from dramatiq.middleware import Prometheus, default_middleware

    dramatiq.set_broker(RedisBroker(url=REDIS_URL, namespace="bench-plain",
                                    middleware=[m() for m in default_middleware if m is not Prometheus]))

    @dramatiq.actor(queue_name="bench-noop")
    def noop() -> None:
        """Nothing."""


VARIANTS = {  # name -> (mode, namespace, queue, actor)
    "dramatiq": ("plain", "bench-plain", "bench-noop", "noop"),
    "gabay": ("gabay", "gabay:dramatiq", "bench-noop", "noop"),
    "gabay capped": ("gabay", "gabay:dramatiq", "bench-capped", "noop_capped"),
    "gabay rate-limited": ("gabay", "gabay:dramatiq", "bench-rated", "noop_rated"),
}


def measure(client: redis.Redis, name: str) -> float:
    """Messages per second for one variant."""
    mode, namespace, queue, actor = VARIANTS[name]
    client.flushdb()
    sender = RedisBroker(url=REDIS_URL, namespace=namespace, middleware=[])
    for _ in range(MESSAGES):
        sender.enqueue(dramatiq.Message(queue_name=queue, actor_name=actor, args=(), kwargs={},
                                        options={}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "GABAY_"))}
    env.update(BENCH_MODE=mode, REDIS_URL=REDIS_URL, GABAY_DATA_DIR=tempfile.mkdtemp())
    broker_module = "gabay.actors" if mode == "gabay" else "bench.bench_throughput"
    log = open(Path(tempfile.gettempdir()) / f"bench-throughput-{mode}.log", "wb")  # noqa: SIM115
    workers = subprocess.Popen(
        [sys.executable, "-m", "dramatiq", broker_module, "bench.bench_throughput",
         "--processes", "1", "--threads", "8", "--queues", queue],
        cwd=Path(__file__).resolve().parents[1], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    msgs = f"{namespace}:{queue}.msgs"
    while client.hlen(msgs) > MESSAGES - WARMUP:
        time.sleep(0.002)
    began = time.perf_counter()
    while client.hlen(msgs) > 0:
        time.sleep(0.005)
    elapsed = time.perf_counter() - began
    workers.send_signal(signal.SIGTERM)
    workers.wait(timeout=60)
    log.close()
    return (MESSAGES - WARMUP) / elapsed


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS
    client = redis.Redis.from_url(REDIS_URL)
    names = list(VARIANTS)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        for name in names[i % len(names):] + names[:i % len(names)]:
            rates[name].append(measure(client, name))
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
