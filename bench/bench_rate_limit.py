"""Benchmark: 100 jobs under "10 per 1 s, 3 at once" on 2 worker processes, gabay vs Dramatiq.

gabay: ``rate_limit="10/1s", max_concurrency=3`` (defer, never fail). Dramatiq: its own
ConcurrentRateLimiter(limit=3) around WindowRateLimiter(limit=10, window=1) inside the actor, raising
on the limit so that Retries re-enqueues (the documented usage; backoff lowered to 100-2000 ms so
the run ends in reasonable time, 20 retries). Prints, for both: maximum starts in any 1-second
window (sliding, from the recorded start times), most jobs running at once, achieved rate against
the limit, retries used, deferrals per job, dead letters and wall time. No assertions.

Run: ``.venv/bin/python bench/bench_rate_limit.py`` (uses Redis database 8 and flushes it).
This file is also the worker module: ``dramatiq ... bench.bench_rate_limit`` with BENCH_MODE set.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as ``python bench/<file>``

import dramatiq
import redis

from bench.common import MODE, enqueue, modules, namespace_of, plain_broker, worker_env, workers
from tests.support.limit_checks import max_in_any_window, max_overlap
from tests.support.polling import wait_for

REDIS_URL = "redis://127.0.0.1:6379/8"
QUEUE = "bench-limited"
RUNS = "bench:runs"
JOBS, LIMIT, WINDOW, CAP, JOB_SECONDS = 100, 10, 1.0, 3, 0.2


def _record(retries: int, deferrals: int) -> dict[str, float]:
    return {"start": time.time(), "retries": retries, "deferrals": deferrals}


if MODE == "gabay":
    from dramatiq.middleware import CurrentMessage

    from gabay.actors import broker

    @dramatiq.actor(queue_name=QUEUE, rate_limit=f"{LIMIT}/{WINDOW:g}s", max_concurrency=CAP)
    def limited(i: int) -> None:
        options = CurrentMessage.get_current_message().options
        run = _record(options.get("retries", 0), options.get("gabay_deferrals", 0))
        run["limiter"] = options.get("gabay_rate_started", 0) / 1e6
        time.sleep(JOB_SECONDS)
        broker.client.rpush(RUNS, json.dumps({**run, "end": time.time()}))

elif MODE == "plain":
    from dramatiq.middleware import CurrentMessage
    from dramatiq.rate_limits import ConcurrentRateLimiter, WindowRateLimiter
    from dramatiq.rate_limits.backends import RedisBackend

    plain = plain_broker(REDIS_URL)
    plain.add_middleware(CurrentMessage())
    dramatiq.set_broker(plain)
    backend = RedisBackend(url=REDIS_URL)
    CONCURRENT = ConcurrentRateLimiter(backend, "bench-concurrent", limit=CAP)
    WINDOWED = WindowRateLimiter(backend, "bench-window", limit=LIMIT, window=int(WINDOW))

    @dramatiq.actor(queue_name=QUEUE, min_backoff=100, max_backoff=2000, max_retries=20)
    def limited(i: int) -> None:
        retries = CurrentMessage.get_current_message().options.get("retries", 0)
        with CONCURRENT.acquire(), WINDOWED.acquire():
            run = _record(retries, retries)
            time.sleep(JOB_SECONDS)
        plain.client.rpush(RUNS, json.dumps({**run, "end": time.time()}))


def n_gap_rate(starts: list[float], limit: int, window: float) -> float:
    """Mean of W / (s[k] - s[k-N]): 1.0 when every start comes exactly when the window allows."""
    starts = sorted(starts)
    gaps = [starts[k] - starts[k - limit] for k in range(limit, len(starts))]
    return sum(window / g for g in gaps) / len(gaps) if gaps else float("nan")


def run(mode: str, client: redis.Redis, timeout: float = 300) -> dict[str, object]:
    namespace = namespace_of(mode)
    client.flushdb()
    env = worker_env(REDIS_URL, BENCH_MODE=mode, HEARTBEAT_TIMEOUT="15")
    dead_key = f"{namespace}:{QUEUE}.XQ"
    with workers(f"rate-{mode}", modules(mode, "bench.bench_rate_limit"), env, processes=2,
                 threads=8, queues=(QUEUE,)).start(client, namespace):
        began = time.time()
        enqueue(REDIS_URL, namespace, QUEUE, "limited", [(i,) for i in range(JOBS)])
        wait_for(lambda: client.llen(RUNS) + client.zcard(dead_key) >= JOBS, timeout=timeout,
                 message=f"{JOBS} jobs to run or be dead-lettered")
        wall = time.time() - began
    runs = [json.loads(r) for r in client.lrange(RUNS, 0, -1)]
    starts = [r["start"] for r in runs]
    limiter = [r["limiter"] for r in runs if r.get("limiter")]
    return {
        "completed": len(runs),
        "dead-lettered": client.zcard(dead_key),
        "max starts in 1 s (limiter clock)": max_in_any_window(limiter, WINDOW) if limiter else "-",
        "max starts in 1 s (actor clock)": max_in_any_window(starts, WINDOW),
        "max starts in 0.99 s (actor clock)": max_in_any_window(starts, WINDOW - 0.01),
        "most running at once": max_overlap([(r["start"], r["end"]) for r in runs]),
        "achieved rate / limit (N-gap)": round(n_gap_rate(starts, LIMIT, WINDOW), 3),
        "jobs per second (wall)": round(len(runs) / wall, 2),
        "retries used (total)": sum(r["retries"] for r in runs),
        "deferrals per job (mean)": round(sum(r["deferrals"] for r in runs) / max(len(runs), 1), 2),
        "deferrals per job (max)": max((r["deferrals"] for r in runs), default=0),
        "wall time s": round(wall, 1),
    }


def main() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    print(f"{JOBS} jobs of {JOB_SECONDS} s, limit {LIMIT} per {WINDOW:g} s, at most {CAP} at once, "
          "2 processes x 8 threads")
    try:
        results = {"gabay": run("gabay", client), "dramatiq": run("plain", client)}
    finally:
        client.flushdb()
    width = max(len(k) for k in results["gabay"])
    print(f"{'':{width}}  {'gabay':>10}  {'dramatiq':>10}")
    for key in results["gabay"]:
        print(f"{key:{width}}  {results['gabay'][key]!s:>10}  {results['dramatiq'][key]!s:>10}")


if __name__ == "__main__":
    main()
