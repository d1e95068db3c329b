"""Benchmark: graceful shutdown of a worker process, gabay against plain Dramatiq.

Both run the same actor (a sleep) on the same Redis (database 7, flushed before and after), one
worker process with 3 threads. Printed, for each, the median over ``--rounds``:

1. Drain with 3 active 2 s jobs and 3 prefetched ones: seconds from SIGTERM to exit, seconds
   from the end of the last job (the actor's own clock) to the exit of the ``dramatiq`` command
   (``Popen.wait`` returned), seconds until the 3 prefetched messages are back in Redis's queue
   list (other processes can take them), and how many jobs completed / were lost.
2. Drain timeout (1 s) shorter than the 3 active 5 s jobs: seconds to exit, and where the 3
   unfinished messages are right after the exit: back in the queue (requeued at once) or still in
   the dead process's acks set (orphaned until the dead-worker recovery).

No assertions: figures only. ``.venv/bin/python bench/bench_drain.py [--rounds 3]``

This file is also the worker module: with ``BENCH_MODE`` set it declares the actor on gabay's
broker (``dramatiq gabay.actors bench.bench_drain``) or on a plain RedisBroker
(``dramatiq bench.bench_drain``).
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as ``python bench/<file>``

import dramatiq
import redis

from bench.common import MODE, modules, namespace_of, plain_broker, worker_env, workers
from tests.support.polling import wait_for
from tests.support.processes import ROOT

REDIS_URL = "redis://127.0.0.1:6379/7"
QUEUE = "bench-drain"
FLAVORS = ("gabay", "plain")

if MODE == "plain":
    dramatiq.set_broker(plain_broker(REDIS_URL))
elif MODE == "gabay":
    import gabay.actors  # noqa: F401  (sets gabay's broker)

if MODE:
    _client = dramatiq.get_broker().client  # type: ignore[attr-defined]

    @dramatiq.actor(queue_name=QUEUE, max_retries=3)
    def nap(token: str, seconds: float) -> None:
        _client.rpush("bench:started", token)
        time.sleep(seconds)
        _client.rpush("bench:finished", f"{token}:{time.time()!r}")  # when it ended


def seconds_until(predicate: Callable[[], object], timeout: float = 60) -> float:
    """How long ``predicate`` took to come true, polled every 5 ms."""
    started = time.monotonic()
    wait_for(predicate, timeout=timeout, interval=0.005, message="the benchmark's next step")
    return time.monotonic() - started


def send(env: dict[str, str], count: int, seconds: float) -> None:
    """Send through the flavour's own broker and middleware, from a producer process."""
    code = f"from bench.bench_drain import nap\nfor i in range({count}): nap.send(f'n{{i}}', {seconds})"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)


def one_round(client: redis.Redis, flavor: str, *, jobs: int, seconds: float,
              shutdown_timeout_ms: int, drain_timeout: float) -> dict[str, float]:
    client.flushdb()
    namespace = namespace_of(flavor)
    queue = f"{namespace}:{QUEUE}"
    env = worker_env(REDIS_URL, BENCH_MODE=flavor, DRAIN_TIMEOUT=str(drain_timeout))
    with workers(f"drain-{flavor}", modules(flavor, "bench.bench_drain"), env, processes=1,
                 threads=3, queues=(QUEUE,), shutdown_timeout_ms=shutdown_timeout_ms).launch() as worker:
        send(env, jobs, seconds)  # while the worker boots, as a producer would
        worker.wait_booted(client, namespace)
        seconds_until(lambda: client.llen("bench:started") == 3 and client.llen(queue) == 0)
        signalled = time.monotonic()
        worker.signal(signal.SIGTERM)
        back = seconds_until(lambda: client.llen(queue) >= jobs - 3 or not worker.running())
        worker.wait(timeout=120)
        exited, exited_at = time.monotonic() - signalled, time.time()
    in_queue = client.llen(queue)
    orphaned = sum(client.scard(k) for k in client.scan_iter(f"{namespace}:__acks__.*.{QUEUE}"))
    ends = [float(row.split(b":")[1]) for row in client.lrange("bench:finished", 0, -1)]
    finished = len(ends)
    return {"exit": exited, "after_last_job": exited_at - max(ends) if ends else float("nan"),
            "prefetched_back": back if in_queue >= jobs - 3 else float("nan"),
            "finished": finished, "in_queue": in_queue, "orphaned": orphaned,
            "lost": jobs - finished - in_queue - orphaned}


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        for _ in range(args.rounds):
            for flavor in FLAVORS:
                results.setdefault(("drain", flavor), []).append(one_round(
                    client, flavor, jobs=6, seconds=2.0, shutdown_timeout_ms=40_000, drain_timeout=30))
                results.setdefault(("cut", flavor), []).append(one_round(
                    client, flavor, jobs=3, seconds=5.0, shutdown_timeout_ms=1000, drain_timeout=1))
    finally:
        client.flushdb()
    report(results, args.rounds)


Column = tuple[str, str, int, int]  # heading, key of one_round's result, width, decimals


def table(results: dict[tuple[str, str], list[dict[str, float]]], case: str,
          columns: list[Column]) -> None:
    """One row per flavour: the median of each column over the rounds."""
    print(f"{'':8}" + "".join(f" {heading:>{width}}" for heading, _, width, _ in columns))
    for flavor in FLAVORS:
        rows = results[(case, flavor)]
        print(f"{flavor:8}" + "".join(f" {median(rows, key):{width}.{decimals}f}"
                                      for _, key, width, decimals in columns))


def report(results: dict[tuple[str, str], list[dict[str, float]]], rounds: int) -> None:
    print(f"Graceful shutdown, 1 process x 3 threads, median of {rounds} rounds")
    print("\n1. SIGTERM with 3 active 2 s jobs and 3 prefetched")
    table(results, "drain", [("exit (s)", "exit", 9, 2),
                             ("exit after last job ends (s)", "after_last_job", 29, 3),
                             ("prefetched back (s)", "prefetched_back", 20, 3),
                             ("completed", "finished", 10, 0), ("lost", "lost", 5, 0)])
    g, p = results[("drain", "gabay")], results[("drain", "plain")]
    sooner = median(p, "prefetched_back") / max(median(g, "prefetched_back"), 0.001)
    print(f"ratio gabay/plain: exit time {median(g, 'exit') / median(p, 'exit'):.2f}; exit after "
          f"the last job {median(g, 'after_last_job'):.3f} s vs {median(p, 'after_last_job'):.3f} s; "
          f"prefetched messages available to other processes {sooner:.0f}x sooner")
    for flavor, rows in (("gabay", g), ("plain", p)):
        print(f"  exit after the last job, every round, {flavor}: "
              + " ".join(f"{row['after_last_job']:.3f}" for row in rows))
    print("\n2. Drain timeout 1 s < 3 active 5 s jobs: where the unfinished messages are at exit")
    table(results, "cut", [("exit (s)", "exit", 9, 2), ("requeued", "in_queue", 9, 0),
                           ("orphaned", "orphaned", 9, 0), ("lost", "lost", 5, 0)])
    print("(orphaned messages wait for the dead-worker recovery: HEARTBEAT_TIMEOUT + 1 s with gabay,"
          " 60 s + a random maintenance pass, often many minutes, with plain Dramatiq)")


if __name__ == "__main__":
    main()
