"""Benchmark: the question pipeline against a plain Dramatiq three-actor pipeline.

Both run the same offline (zero-latency) stage work with the same hand-offs on the same Redis
(database 6, flushed before and after), with the same worker processes and threads; gabay also
writes its job records and runs its middleware. Each round starts fresh workers for each side
(order alternating) and measures:

- throughput: a burst of ``--jobs`` documents enqueued at once, from the first send to the end
  of the last validation (read from the stage timestamps, not from polling);
- hand-off latency: ``--sequential`` documents sent one after the other (each waited for), the
  time from a stage's end to the next stage's start, without queueing behind other work.

The table shows the median over ``--rounds`` rounds. No timed assertions: figures only.

    .venv/bin/python bench/bench_pipeline.py [--jobs 300] [--sequential 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as ``python bench/<file>``

import redis

from bench.common import GABAY_NAMESPACE, PLAIN_NAMESPACE, worker_env, workers
from tests.support.polling import wait_for
from tests.support.processes import ROOT

REDIS_URL = "redis://127.0.0.1:6379/6"
DOCUMENTS = sorted((ROOT / "examples" / "documents").glob("*.md"))
HANDOFFS = (("retrieval", "generation"), ("generation", "validation"))
Marks = dict[str, float]  # "<stage>:start" / "<stage>:end" -> epoch seconds


def requests_for(jobs: int) -> list[dict[str, Any]]:
    texts = [(p.stem, p.read_text()) for p in DOCUMENTS]
    return [{"document": {"id": f"{texts[i % 3][0]}-{i}", "title": texts[i % 3][0],
                          "text": texts[i % 3][1]}, "count": 5} for i in range(jobs)]


class Side:
    """One pipeline under test: how to start its workers, send a job and read its marks."""

    name = ""
    imports: tuple[str, ...] = ()  # the modules ``dramatiq`` imports
    namespace = ""  # where its workers heartbeat

    def __init__(self, client: redis.Redis, env: dict[str, str], args: argparse.Namespace) -> None:
        self.client, self.env, self.args = client, env, args

    def send(self, request: dict[str, Any]) -> str:
        raise NotImplementedError

    def marks(self, job_id: str) -> Marks | None:
        """The stage times of a finished job, None while it runs."""
        raise NotImplementedError

    def run_round(self) -> tuple[float, dict[str, list[float]]]:
        """Start workers, run the burst and the sequential jobs; (documents/s, hand-offs ms)."""
        with workers(f"pipeline-{self.name}", self.imports, self.env, processes=self.args.processes,
                     threads=self.args.threads).start(self.client, self.namespace):
            return self._burst(), self._sequential()

    def _burst(self) -> float:
        started = time.time()
        ids = [self.send(r) for r in requests_for(self.args.jobs)]
        finished = self._wait_all(ids)
        return len(ids) / (max(m["validation:end"] for m in finished) - started)

    def _sequential(self) -> dict[str, list[float]]:
        marks = [self._wait_all([self.send(r)])[0] for r in requests_for(self.args.sequential)]
        return {f"{a}->{b}": [(m[f"{b}:start"] - m[f"{a}:end"]) * 1000 for m in marks]
                for a, b in HANDOFFS}

    def _wait_all(self, ids: list[str]) -> list[Marks]:
        found: dict[str, Marks] = {}

        def done() -> bool:
            for job_id in ids:
                if job_id not in found and (marks := self.marks(job_id)) is not None:
                    found[job_id] = marks
            return len(found) == len(ids)

        wait_for(done, timeout=600, interval=0.01, message=f"{len(ids)} documents to finish")
        return [found[i] for i in ids]


class Gabay(Side):
    name, imports, namespace = "gabay", ("gabay.actors",), GABAY_NAMESPACE

    def send(self, request: dict[str, Any]) -> str:
        from gabay.actors.questions import generate_questions

        return str(generate_questions.send(request))

    def marks(self, job_id: str) -> Marks | None:
        from gabay.actors.questions import store

        record = store.get(job_id)
        if record.status not in ("succeeded", "failed"):
            return None
        marks: Marks = {}
        for stage, timing in record.stages.items():
            marks[f"{stage}:start"] = timing.started_at
            marks[f"{stage}:end"] = timing.finished_at or timing.started_at
        return marks


class Plain(Side):
    name, imports, namespace = "plain", ("bench.plain_pipeline",), PLAIN_NAMESPACE

    def send(self, request: dict[str, Any]) -> str:
        from bench import plain_pipeline

        job_id = uuid.uuid4().hex
        plain_pipeline.plain_retrieve.send(request, job_id)
        return job_id

    def marks(self, job_id: str) -> Marks | None:
        from bench import plain_pipeline

        raw = self.client.hgetall(plain_pipeline.job_key(job_id))
        if b"validation:end" not in raw:
            return None
        return {k.decode(): float(v) for k, v in raw.items() if k != b"result"}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    client = redis.Redis.from_url(REDIS_URL)
    env = worker_env(REDIS_URL, BENCH_REDIS_URL=REDIS_URL, LOG_LEVEL="WARNING",
                     QUESTION_GENERATION_CONCURRENCY=str(args.processes * args.threads))
    os.environ.clear()  # this process sends with the same settings as the workers
    os.environ.update(env)
    sides = [Plain(client, env, args), Gabay(client, env, args)]
    rates: dict[str, list[float]] = {s.name: [] for s in sides}
    handoffs: dict[str, dict[str, list[float]]] = {s.name: {} for s in sides}
    try:
        for round_number in range(args.rounds):
            for side in sides if round_number % 2 == 0 else reversed(sides):
                client.flushdb()
                rate, latencies = side.run_round()
                rates[side.name].append(rate)
                for name, values in latencies.items():
                    handoffs[side.name].setdefault(name, []).append(statistics.median(values))
    finally:
        client.flushdb()
    report(args, rates, handoffs)


def report(args: argparse.Namespace, rates: dict[str, list[float]],
           handoffs: dict[str, dict[str, list[float]]]) -> None:
    print(f"{args.jobs} documents per burst, {args.sequential} sequential, {args.rounds} rounds "
          f"(median), {args.processes} processes x {args.threads} threads, offline provider")
    print(f"{'':44}{'plain Dramatiq':>16}{'gabay':>12}{'ratio':>10}")
    plain, gabay = statistics.median(rates["plain"]), statistics.median(rates["gabay"])
    print(f"{'documents/s (burst)':44}{plain:16.1f}{gabay:12.1f}{gabay / plain:10.2f}")
    for name in handoffs["plain"]:
        a, b = statistics.median(handoffs["plain"][name]), statistics.median(handoffs["gabay"][name])
        print(f"{name + ' hand-off, median ms':44}{a:16.1f}{b:12.1f}{b / a if a else float('nan'):10.2f}")


if __name__ == "__main__":
    main()
