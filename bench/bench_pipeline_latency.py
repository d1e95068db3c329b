"""Benchmark: the whole question pipeline against fake providers with realistic latency and limits.

The fake DeepSeek (drafts) and OpenAI (blind round trip and validation) of tests/fakes speak the
real wire format and answer like a model would take time to: a time to first token of
``--ttft`` seconds (1 s), then ``--draft-tps`` output tokens per second for drafts (50) and
``--check-tps`` for the shorter validation calls (200). Both enforce their RPM / TPM limits like
OpenAI (429 with ``retry-after`` over the limit: ``--rpm``, ``--tpm``) and the workers' provider
budget (gabay/limits/provider_budget.py) is given the same limits. ``--jobs`` requests of
``--count`` questions (the sample documents in turn) are sent at once to 2 worker processes
(``--threads`` each, ``QUESTION_GENERATION_CONCURRENCY=--concurrency``) on a real Redis
(``--redis-url``, flushed before and after).

Printed: accepted questions per minute (from the first send to the last job's end), the time per
stage (median of the jobs' stage timings and of their LLM calls), the calls and tokens per
minute against the limits, and the 429s the fakes sent (goal: none).

    .venv/bin/python bench/bench_pipeline_latency.py [--jobs 24] [--count 10] [--threads 16]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as ``python bench/<file>``

import redis

from bench.common import worker_env, workers
from tests.fakes import llm_server as fake
from tests.support.polling import wait_for

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted((ROOT / "examples" / "documents").glob("*.md"))


class Latency:
    """A responder that answers as the fake examiner does, after a model's realistic delay."""

    def __init__(self, ttft: float, draft_tps: float, check_tps: float) -> None:
        self.ttft, self.draft_tps, self.check_tps = ttft, draft_tps, check_tps

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = fake.exam_responder(body)
        tokens = len(json.dumps(answer)) // 4 + 1
        drafting = "questions" in answer
        time.sleep(self.ttft + tokens / (self.draft_tps if drafting else self.check_tps))
        return answer


def request(index: int, count: int) -> dict[str, Any]:
    path = DOCUMENTS[index % len(DOCUMENTS)]
    return {"request_id": f"latency-{index}", "count": count,
            "document": {"id": f"{path.stem}-{index}", "title": path.stem, "text": path.read_text()}}


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--ttft", type=float, default=1.0)
    parser.add_argument("--draft-tps", type=float, default=50.0)
    parser.add_argument("--check-tps", type=float, default=200.0)
    parser.add_argument("--rpm", type=int, default=500)
    parser.add_argument("--tpm", type=int, default=200_000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    args = parser.parse_args()

    client = redis.Redis.from_url(args.redis_url)
    client.flushdb()
    responder = Latency(args.ttft, args.draft_tps, args.check_tps)
    deepseek = fake.FakeLLMServer("deepseek", responder=responder).enforce_limits(args.rpm, args.tpm).start()
    openai = fake.FakeLLMServer("openai", responder=responder).enforce_limits(args.rpm, args.tpm).start()
    env = worker_env(args.redis_url, DEEPSEEK_API_KEY=deepseek.api_key, DEEPSEEK_BASE_URL=deepseek.base_url,
                     OPENAI_API_KEY=openai.api_key, OPENAI_BASE_URL=openai.base_url, LLM_TIMEOUT="120",
                     QUESTION_GENERATION_CONCURRENCY=str(args.concurrency),
                     LLM_OPENAI_RPM=str(args.rpm), LLM_OPENAI_TPM=str(args.tpm),
                     LLM_DEEPSEEK_RPM=str(args.rpm), LLM_DEEPSEEK_TPM=str(args.tpm))
    os.environ.update({k: v for k, v in env.items() if k.startswith(("REDIS_", "GABAY_"))})
    from gabay.actors import broker, generate_questions  # bound to the environment above
    from gabay.jobs import JobStatus, JobStore
    from gabay.settings import load_settings

    store = JobStore(client, load_settings())
    pool = workers("latency", ("gabay.actors",), env, processes=2, threads=args.threads)
    try:
        pool.start(client, broker.namespace, timeout=60)
        started = time.time()
        job_ids = [generate_questions.send(request(i, args.count)) for i in range(args.jobs)]

        def finished() -> bool:
            return all(store.get(j).status in (JobStatus.SUCCEEDED, JobStatus.FAILED) for j in job_ids)

        wait_for(finished, timeout=1800, interval=0.5, message="every job")
        records = [store.get(j) for j in job_ids]
    finally:
        pool.stop()
        deepseek.stop()
        openai.stop()
    ended = max(r.updated_at for r in records)
    minutes = (ended - started) / 60
    accepted = sum(len((r.result or {}).get("questions", [])) for r in records)
    failed = sum(1 for r in records if r.status is JobStatus.FAILED)
    stage_seconds: dict[str, list[float]] = defaultdict(list)
    call_seconds: dict[str, list[float]] = defaultdict(list)
    for record in records:
        for stage, timing in record.stages.items():
            if timing.seconds is not None:
                stage_seconds[stage].append(timing.seconds)
        for call in record.calls:
            if call.provider != "offline":
                call_seconds[call.stage].append(call.duration_ms / 1000)
    calls = [c for r in records for c in r.calls if c.provider != "offline"]
    client.flushdb()

    print(f"{args.jobs} jobs x {args.count} questions, 2 processes x {args.threads} threads, "
          f"concurrency {args.concurrency}; TTFT {args.ttft} s, drafts {args.draft_tps} tok/s, "
          f"checks {args.check_tps} tok/s; limits {args.rpm} RPM / {args.tpm} TPM per provider")
    print("| measure | value |\n|---|---|")
    print(f"| accepted questions | {accepted} ({failed} jobs failed) |")
    print(f"| wall time | {minutes * 60:.1f} s |")
    print(f"| accepted questions per minute (goal >= 100) | {accepted / minutes:.0f} |")
    for stage in sorted(stage_seconds):
        print(f"| stage {stage}, median | {median(stage_seconds[stage])} "
              f"(LLM calls {median(call_seconds.get(stage, []))}) |")
    for stage in sorted(set(call_seconds) - set(stage_seconds)):
        print(f"| calls {stage}, median | {median(call_seconds[stage])} |")
    for provider in ("deepseek", "openai"):
        mine = [c for c in calls if c.provider == provider]
        used = sum(c.prompt_tokens + c.completion_tokens for c in mine)
        print(f"| {provider}: calls / tokens per minute | {len(mine) / minutes:.0f} / {used / minutes:.0f} "
              f"(limits {args.rpm} / {args.tpm}) |")
    print(f"| 429s sent by the fakes (goal 0) | {deepseek.answered_429 + openai.answered_429} |")


if __name__ == "__main__":
    main()
