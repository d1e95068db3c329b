"""Benchmark: the question pipeline against a plain Dramatiq three-actor pipeline.

Both run the same offline (zero-latency) stage work with the same hand-offs on the same Redis
(database 6, flushed before and after), with the same worker processes and threads. Printed:
end-to-end throughput (documents per second) and per-stage hand-off latency (a stage's end to
the next stage's start), median and 95th percentile. No timed assertions: figures only.

    python bench/bench_pipeline.py [--jobs 90] [--processes 2] [--threads 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/6"
DOCUMENTS = sorted((ROOT / "examples" / "documents").glob("*.md"))
HANDOFFS = (("retrieval", "generation"), ("generation", "validation"))


def start_workers(module: str, env: dict[str, str], processes: int, threads: int) -> subprocess.Popen:
    log = open(Path(tempfile.gettempdir()) / f"bench-{module}.log", "wb")  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-m", "dramatiq", module, "--processes", str(processes),
                             "--threads", str(threads)], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def requests_for(jobs: int) -> list[dict[str, object]]:
    texts = [(p.stem, p.read_text()) for p in DOCUMENTS]
    return [{"document": {"id": f"{texts[i % 3][0]}-{i}", "title": texts[i % 3][0], "text": texts[i % 3][1]},
             "count": 5} for i in range(jobs)]


def wait_until(done: object, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit("benchmark timed out; see the worker logs in the temp directory")
        time.sleep(0.05)


def run_gabay(client: redis.Redis, env: dict[str, str], args: argparse.Namespace) -> dict[str, object]:
    os.environ.update(env)
    from gabay.actors.questions import generate_questions, store

    workers = start_workers("gabay.actors", env, args.processes, args.threads)
    try:
        time.sleep(3)  # boot
        started = time.monotonic()
        ids = [generate_questions.send(r) for r in requests_for(args.jobs)]
        pending = set(ids)

        def gabay_done() -> bool:
            pending.difference_update([i for i in list(pending)[:20]
                                       if store.get(i).status in ("succeeded", "failed")])
            return not pending

        wait_until(gabay_done)
        elapsed = time.monotonic() - started
        records = [store.get(i) for i in ids]
    finally:
        workers.terminate()
        workers.wait(60)
    handoffs = {f"{a}->{b}": [(r.stages[b].started_at - (r.stages[a].finished_at or 0)) * 1000
                              for r in records] for a, b in HANDOFFS}
    ok = sum(r.status == "succeeded" for r in records)
    return {"elapsed": elapsed, "ok": ok, "handoffs": handoffs}


def run_plain(client: redis.Redis, env: dict[str, str], args: argparse.Namespace) -> dict[str, object]:
    env = {**env, "BENCH_REDIS_URL": REDIS_URL}
    os.environ["BENCH_REDIS_URL"] = REDIS_URL
    sys.path.insert(0, str(ROOT))
    from bench import plain_pipeline

    workers = start_workers("bench.plain_pipeline", env, args.processes, args.threads)
    try:
        time.sleep(3)
        started = time.monotonic()
        ids = [uuid.uuid4().hex for _ in range(args.jobs)]
        for job_id, request in zip(ids, requests_for(args.jobs), strict=True):
            plain_pipeline.plain_retrieve.send(request, job_id)
        pending = set(ids)

        def plain_done() -> bool:
            pending.difference_update([i for i in list(pending)[:20]
                                       if client.hexists(f"bench-plain:job:{i}", "validation:end")])
            return not pending

        wait_until(plain_done)
        elapsed = time.monotonic() - started
        marks = [{k.decode(): float(v) for k, v in client.hgetall(f"bench-plain:job:{i}").items()}
                 for i in ids]
    finally:
        workers.terminate()
        workers.wait(60)
    handoffs = {f"{a}->{b}": [(m[f"{b}:start"] - m[f"{a}:end"]) * 1000 for m in marks] for a, b in HANDOFFS}
    return {"elapsed": elapsed, "ok": len(marks), "handoffs": handoffs}


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=90)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DEEPSEEK_", "REDIS_"))}
    env.update(REDIS_URL=REDIS_URL, GABAY_DATA_DIR=tempfile.mkdtemp(prefix="gabay-bench-"),
               QUESTION_GENERATION_CONCURRENCY=str(args.processes * args.threads), LOG_LEVEL="WARNING")
    try:
        plain = run_plain(client, env, args)
        client.flushdb()
        gabay = run_gabay(client, env, args)
    finally:
        client.flushdb()
    print(f"{args.jobs} documents, {args.processes} processes x {args.threads} threads, offline provider, "
          f"QUESTION_GENERATION_CONCURRENCY={args.processes * args.threads}")
    print(f"{'':34}{'plain Dramatiq':>16}{'gabay':>12}{'ratio':>10}")
    rate_plain, rate_gabay = args.jobs / plain["elapsed"], args.jobs / gabay["elapsed"]  # type: ignore[operator]
    print(f"{'documents/s':34}{rate_plain:16.1f}{rate_gabay:12.1f}{rate_gabay / rate_plain:10.2f}")
    print(f"{'completed':34}{plain['ok']:>16}{gabay['ok']:>12}")
    for name in plain["handoffs"]:  # type: ignore[attr-defined]
        for label, stat in (("median", statistics.median), ("p95", p95)):
            a = stat(plain["handoffs"][name])  # type: ignore[index]
            b = stat(gabay["handoffs"][name])  # type: ignore[index]
            print(f"{name + ' ' + label + ' ms':34}{a:16.1f}{b:12.1f}{b / a if a else float('nan'):10.2f}")


if __name__ == "__main__":
    main()
