"""Benchmark: graceful shutdown of a worker process, gabay against plain Dramatiq.

Both run the same actor (a sleep) on the same Redis (database 7, flushed before and after), one
worker process with 3 threads. Printed, for each, the median over ``--rounds``:

1. Drain with 3 active 2 s jobs and 3 prefetched ones: seconds from SIGTERM to exit, seconds
   until the 3 prefetched messages are back in Redis's queue list (other processes can take
   them), and how many jobs completed / were lost.
2. Drain timeout (1 s) shorter than the 3 active 5 s jobs: seconds to exit, and where the 3
   unfinished messages are right after the exit: back in the queue (requeued at once) or still in
   the dead process's acks set (orphaned until the dead-worker recovery).

No assertions: figures only. ``python bench/bench_drain.py [--rounds 3]``

This file is also the worker module: with ``BENCH_DRAIN_FLAVOR`` set it declares the actor on
gabay's broker (``dramatiq gabay.actors bench.bench_drain``) or on a plain RedisBroker
(``dramatiq bench.bench_drain``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dramatiq
import redis

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/7"
QUEUE = "bench-drain"
FLAVOR = os.environ.get("BENCH_DRAIN_FLAVOR")
NAMESPACES = {"gabay": "gabay:dramatiq", "plain": "dramatiq"}

if FLAVOR == "plain":
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware import Prometheus, default_middleware

    dramatiq.set_broker(RedisBroker(url=REDIS_URL, middleware=[
        m() for m in default_middleware if m is not Prometheus]))
elif FLAVOR == "gabay":
    import gabay.actors  # noqa: F401  (sets gabay's broker)

if FLAVOR:
    _client = dramatiq.get_broker().client  # type: ignore[attr-defined]

    @dramatiq.actor(queue_name=QUEUE, max_retries=3)
    def nap(token: str, seconds: float) -> None:
        _client.rpush("bench:started", token)
        time.sleep(seconds)
        _client.rpush("bench:finished", token)


def start(flavor: str, shutdown_timeout_ms: int, drain_timeout: float) -> subprocess.Popen:
    env = {**os.environ, "BENCH_DRAIN_FLAVOR": flavor, "REDIS_URL": REDIS_URL,
           "DRAIN_TIMEOUT": str(drain_timeout), "PYTHONPATH": str(ROOT),
           "GABAY_DATA_DIR": tempfile.mkdtemp(prefix="bench-drain-")}
    modules = ["gabay.actors", "bench.bench_drain"] if flavor == "gabay" else ["bench.bench_drain"]
    log = open(Path(tempfile.gettempdir()) / f"bench-drain-{flavor}.log", "ab")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "dramatiq", *modules, "--processes", "1", "--threads", "3",
         "--queues", QUEUE, "--worker-shutdown-timeout", str(shutdown_timeout_ms)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until(predicate: object, timeout: float = 60) -> float:
    started = time.monotonic()
    while not predicate():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise SystemExit("benchmark timed out; see bench-drain-*.log in the temp directory")
        time.sleep(0.005)
    return time.monotonic() - started


def send(flavor: str, count: int, seconds: float) -> None:
    env = {**os.environ, "BENCH_DRAIN_FLAVOR": flavor, "REDIS_URL": REDIS_URL, "PYTHONPATH": str(ROOT)}
    code = f"from bench.bench_drain import nap\nfor i in range({count}): nap.send(f'n{{i}}', {seconds})"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)


def one_round(client: redis.Redis, flavor: str, *, jobs: int, seconds: float,
              shutdown_timeout_ms: int, drain_timeout: float) -> dict[str, float]:
    client.flushdb()
    namespace = NAMESPACES[flavor]
    process = start(flavor, shutdown_timeout_ms, drain_timeout)
    send(flavor, jobs, seconds)
    wait_until(lambda: client.llen("bench:started") == 3 and client.llen(f"{namespace}:{QUEUE}") == 0)
    signalled = time.monotonic()
    process.send_signal(15)
    back = wait_until(lambda: client.llen(f"{namespace}:{QUEUE}") >= jobs - 3 or process.poll() is not None)
    process.wait(timeout=120)
    exited = time.monotonic() - signalled
    in_queue = client.llen(f"{namespace}:{QUEUE}")
    orphaned = sum(client.scard(k) for k in client.scan_iter(f"{namespace}:__acks__.*.{QUEUE}"))
    finished = client.llen("bench:finished")
    return {"exit": exited, "prefetched_back": back if in_queue >= jobs - 3 else float("nan"),
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
            for flavor in ("gabay", "plain"):
                results.setdefault(("drain", flavor), []).append(one_round(
                    client, flavor, jobs=6, seconds=2.0, shutdown_timeout_ms=40_000, drain_timeout=30))
                results.setdefault(("cut", flavor), []).append(one_round(
                    client, flavor, jobs=3, seconds=5.0, shutdown_timeout_ms=1000, drain_timeout=1))
    finally:
        client.flushdb()
    report(results, args.rounds)


def report(results: dict[tuple[str, str], list[dict[str, float]]], rounds: int) -> None:
    print(f"Graceful shutdown, 1 process x 3 threads, median of {rounds} rounds")
    print("\n1. SIGTERM with 3 active 2 s jobs and 3 prefetched")
    print(f"{'':8} {'exit (s)':>9} {'prefetched back (s)':>20} {'completed':>10} {'lost':>5}")
    for flavor in ("gabay", "plain"):
        rows = results[("drain", flavor)]
        print(f"{flavor:8} {median(rows, 'exit'):9.2f} {median(rows, 'prefetched_back'):20.3f} "
              f"{median(rows, 'finished'):10.0f} {median(rows, 'lost'):5.0f}")
    g, p = results[("drain", "gabay")], results[("drain", "plain")]
    sooner = median(p, "prefetched_back") / max(median(g, "prefetched_back"), 0.001)
    print(f"ratio gabay/plain: exit time {median(g, 'exit') / median(p, 'exit'):.2f}; "
          f"prefetched messages available to other processes {sooner:.0f}x sooner")
    print("\n2. Drain timeout 1 s < 3 active 5 s jobs: where the unfinished messages are at exit")
    print(f"{'':8} {'exit (s)':>9} {'requeued':>9} {'orphaned':>9} {'lost':>5}")
    for flavor in ("gabay", "plain"):
        rows = results[("cut", flavor)]
        print(f"{flavor:8} {median(rows, 'exit'):9.2f} {median(rows, 'in_queue'):9.0f} "
              f"{median(rows, 'orphaned'):9.0f} {median(rows, 'lost'):5.0f}")
    print("(orphaned messages wait for the dead-worker recovery: HEARTBEAT_TIMEOUT + 1 s with gabay,"
          " 60 s + a random maintenance pass, often many minutes, with plain Dramatiq)")


if __name__ == "__main__":
    main()
