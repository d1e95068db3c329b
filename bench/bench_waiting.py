"""Benchmark: who runs next under a cap - backlog pace, variable run times, priority, fair share.

gabay only (plain Dramatiq has no cluster-wide cap to compare with); each figure is printed next
to the ideal schedule computed from the same run times. 1 worker process x 8 threads (the
variable case: 2 processes x 4 threads) on Redis database 8, flushed before each case. Cases:

1. Backlog: 2,000 jobs of 70 ms under ``max_concurrency=3`` and ``rate_limit="100/1s"``: jobs
   per second against the ideal (3 / 0.07 s = 42.9/s), and the worker process's RSS at the
   start and the end.
2. Variable run times: cap 2, two 5 s jobs and sixteen 0.2 s jobs sent together: makespan
   against the ideal (the 13.2 s of work spread evenly over the 2 slots: 6.6 s) and slot
   utilisation (busy slot-seconds / (2 x makespan)).
3. Priority: one urgent job sent behind 300 waiting normal ones (cap 1, 20 ms each): how many
   jobs started before it, and its wait.
4. Fair share: teacher A has a backlog (10, then 300 jobs, cap 1, 20 ms each); teacher B sends
   one job: B's wait and how many of A's jobs started before it (3 rounds, median and max).

No assertions. Run: ``.venv/bin/python bench/bench_waiting.py``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as ``python bench/<file>``

import dramatiq
import redis

from bench.common import MODE, modules, namespace_of, rss_mb, worker_env, workers
from gabay.keys import Keys
from tests.support.polling import wait_for

REDIS_URL = "redis://127.0.0.1:6379/8"
QUEUE = "bench-waiting"
RUNS = "bench:waiting:runs"
WAITING = Keys().cap_waiting("mutex_job")  # the workers run with the default key prefix

if MODE == "gabay":
    import gabay.actors  # noqa: F401  (sets the gabay broker)
    from gabay.actors import broker as _broker

    def _record(token: str, started: float) -> None:
        _broker.client.rpush(RUNS, json.dumps({"token": token, "start": started, "end": time.time()}))

    @dramatiq.actor(queue_name=QUEUE, max_concurrency=3, rate_limit="100/1s")
    def backlog_job(token: str, seconds: float) -> None:
        started = time.time()
        time.sleep(seconds)
        _record(token, started)

    @dramatiq.actor(queue_name=QUEUE, max_concurrency=2)
    def variable_job(token: str, seconds: float) -> None:
        started = time.time()
        time.sleep(seconds)
        _record(token, started)

    @dramatiq.actor(queue_name=QUEUE, max_concurrency=1,
                    tenant_of=lambda token, seconds: token.split(".", 1)[0])
    def mutex_job(token: str, seconds: float) -> None:
        started = time.time()
        time.sleep(seconds)
        _record(token, started)


def _runs(client: redis.Redis) -> list[dict]:
    return sorted((json.loads(raw) for raw in client.lrange(RUNS, 0, -1)), key=lambda r: r["start"])


def _send(client: redis.Redis, actor: str, args: list[tuple], **options: object) -> None:
    """Through gabay's broker in this process (its enqueue handles priorities and delays)."""
    from gabay.actors import broker

    for arguments in args:
        broker.enqueue(dramatiq.Message(queue_name=QUEUE, actor_name=actor, args=arguments,
                                        kwargs={}, options=dict(options)))


def _workers(client: redis.Redis, processes: int = 1, threads: int = 8):  # type: ignore[no-untyped-def]
    return workers("waiting", modules("gabay", "bench.bench_waiting"),
                   worker_env(REDIS_URL, BENCH_MODE="gabay"), processes=processes,
                   threads=threads, queues=(QUEUE,)).start(client, namespace_of("gabay"))


def backlog(client: redis.Redis) -> None:
    client.flushdb()
    with _workers(client) as process:
        child = process.child_pids()[0]
        rss_start = rss_mb(child)
        began = time.time()
        _send(client, "backlog_job", [(f"b{i}", 0.07) for i in range(2000)])
        wait_for(lambda: client.llen(RUNS) == 2000, timeout=600, interval=0.05, message="2,000 jobs")
        rss_end = rss_mb(child)
    runs = _runs(client)
    rate = 2000 / (runs[-1]["end"] - began)
    print("1. Backlog: 2,000 x 70 ms, cap 3 and 100/1 s, 1 process x 8 threads")
    print(f"   {rate:.1f} jobs/s; ideal 3 / 0.07 s = {3 / 0.07:.1f} jobs/s ({rate / (3 / 0.07):.0%}); "
          f"worker RSS {rss_start:.0f} MB at the start, {rss_end:.0f} MB at the end")


def variable(client: redis.Redis) -> None:
    client.flushdb()
    with _workers(client, processes=2, threads=4):
        began = time.time()
        _send(client, "variable_job", [("long0", 5.0), ("long1", 5.0)])
        _send(client, "variable_job", [(f"short{i}", 0.2) for i in range(16)])
        wait_for(lambda: client.llen(RUNS) == 18, timeout=300, interval=0.02, message="18 jobs")
    runs = _runs(client)
    makespan = runs[-1]["end"] - began if runs else 0.0
    busy = sum(r["end"] - r["start"] for r in runs)
    ideal = (10 + 16 * 0.2) / 2  # the work spread evenly over the 2 slots
    print("2. Variable run times: cap 2, two 5 s + sixteen 0.2 s jobs, 2 processes x 4 threads")
    print(f"   makespan {makespan:.1f} s; ideal {ideal:.1f} s ({makespan / ideal:.2f}x); "
          f"slot utilisation {busy / (2 * makespan):.0%}")


def priority(client: redis.Redis) -> None:
    client.flushdb()
    waiting = WAITING
    with _workers(client):
        _send(client, "mutex_job", [(f"n{i}", 0.02) for i in range(300)])
        wait_for(lambda: client.zcard(waiting) >= 250, timeout=60, message="the backlog to wait")
        sent = time.time()
        _send(client, "mutex_job", [("urgent", 0.02)], priority="urgent")
        wait_for(lambda: client.llen(RUNS) == 301, timeout=120, interval=0.02, message="301 jobs")
    runs = _runs(client)
    position = next(i for i, r in enumerate(runs) if r["token"] == "urgent")
    before = sum(1 for r in runs[:position] if r["start"] >= sent)
    print("3. Priority: one urgent job behind 300 waiting normal ones, cap 1, 20 ms each")
    print(f"   {before} job(s) started between its send and its start; it waited "
          f"{runs[position]['start'] - sent:.3f} s (FIFO: ~300 jobs, ~{300 * 0.02:.0f} s)")


def fairness(client: redis.Redis) -> None:
    print("4. Fair share: teacher A's backlog, then one job of teacher B; cap 1, 20 ms each")
    print(f"   {'A backlog':>10} {'B wait p50 (s)':>15} {'B wait max (s)':>15} {'A jobs before B':>16}")
    for size in (10, 300):
        waits, before = [], []
        for _ in range(3):
            client.flushdb()
            with _workers(client):
                _send(client, "mutex_job", [(f"a.{i}", 0.02) for i in range(size)])
                wait_for(lambda size=size: client.zcard(WAITING) >= size * 0.8,
                         timeout=60, message="the backlog to wait")
                sent = time.time()
                _send(client, "mutex_job", [("b.0", 0.02)])
                wait_for(lambda size=size: client.llen(RUNS) == size + 1, timeout=120, interval=0.02,
                         message="the jobs")
            runs = _runs(client)
            b = next(i for i, r in enumerate(runs) if r["token"] == "b.0")
            waits.append(runs[b]["start"] - sent)
            before.append(sum(1 for r in runs[:b] if r["start"] >= sent))
        print(f"   {size:>10} {statistics.median(waits):>15.3f} {max(waits):>15.3f} "
              f"{max(before):>16}")


def main() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    import os

    os.environ["REDIS_URL"] = REDIS_URL  # the sending broker of this process
    try:
        backlog(client)
        variable(client)
        priority(client)
        fairness(client)
    finally:
        client.flushdb()


if __name__ == "__main__":
    main()
