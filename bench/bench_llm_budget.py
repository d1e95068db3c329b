"""Benchmark: 8 processes share one OpenAI key through the provider budget; TPM used and 429s.

A fake OpenAI server (tests/fakes/llm_server.py) enforces RPM and TPM like OpenAI (buckets refilled
continuously over a minute, 429 with ``retry-after`` when a call does not fit) and sends the
``x-ratelimit-*`` headers. ``--processes`` processes with ``--threads`` threads each call it as
fast as the shared budget (gabay/limits/provider_budget.py, in Redis) lets them. The processes
start with the default limits of the settings (200,000 TPM), far above the fake's: they learn the
real limits from the first responses' headers.

Printed: tokens served, utilisation of the TPM (tokens served over what the limit allows in the
run, the full bucket at the start included), the steady-state utilisation after the first
minute's burst, HTTP 429s (in all, and after the first), calls, and how long calls waited for
the budget. The issue's spec is a 10-minute run (``--seconds 600``); shorter runs are cheaper and
show the same behaviour once the first minute is past.

Run: ``.venv/bin/python bench/bench_llm_budget.py --seconds 120`` (Redis database 8, its own key
prefix, deleted at the start).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as ``python bench/<file>``

import redis
from pydantic import SecretStr

from gabay.errors import ProviderError, ProviderHeld
from gabay.keys import Keys
from gabay.limits.provider_budget import ProviderBudget
from gabay.llm.chat import ChatProvider
from gabay.llm.providers import provider_limits
from gabay.settings import load_settings
from tests.fakes import llm_server as fake

REDIS_URL = "redis://127.0.0.1:6379/8"
PREFIX = "bench-llm-budget:"
KEY = "sk-bench-key"
#: About 500 prompt tokens a call (the fake counts 4 characters a token).
PROMPT = "Passage text. " * 143


def worker(base_url: str, deadline: float, threads: int, results: multiprocessing.Queue) -> None:
    """One process: ``threads`` threads calling until ``deadline`` (wall clock)."""
    settings = load_settings(llm_timeout=30)
    client = redis.Redis.from_url(REDIS_URL)
    budget = ProviderBudget(client, Keys(PREFIX), headroom=settings.llm_budget_headroom, wait_ms=60_000)
    provider = ChatProvider("openai", "gpt-4o-mini", api_key=SecretStr(KEY), base_url=base_url,
                            settings=settings, budget=budget, limits=provider_limits(settings, "openai"))
    stats = {"calls": 0, "errors": 0, "held": 0, "waited_s": 0.0}
    lock = threading.Lock()

    def loop(n: int) -> None:
        i = 0
        while time.time() < deadline:
            i += 1
            started = time.monotonic()
            try:
                completion = provider.complete_json("Reply in JSON.", f"{PROMPT} {n}-{i}", stage="bench",
                                                    max_tokens=256)
            except ProviderHeld as held:  # what a job does: wait (a deferral) until there is room
                with lock:
                    stats["held"] += 1
                time.sleep(min(held.retry_in_ms / 1000, max(deadline - time.time(), 0)))
                continue
            except ProviderError:
                with lock:
                    stats["errors"] += 1
                continue
            with lock:
                stats["calls"] += 1
                stats["waited_s"] += max(time.monotonic() - started - completion.call.duration_ms / 1000, 0)

    pool = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put(stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="run length (spec: 600)")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rpm", type=int, default=1000)
    parser.add_argument("--tpm", type=int, default=60_000)
    args = parser.parse_args()

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=PREFIX + "*"):
        client.delete(key)
    with fake.running("openai", api_key=KEY, responder=lambda body: {"ok": True}) as server:
        server.enforce_limits(args.rpm, args.tpm)
        served_at: list[tuple[float, int]] = []
        original = server.limits.admit  # type: ignore[union-attr]

        def admit(tokens: int) -> tuple[bool, dict[str, str]]:
            admitted, headers = original(tokens)
            if admitted:
                served_at.append((time.monotonic(), tokens))
            return admitted, headers

        server.limits.admit = admit  # type: ignore[union-attr,method-assign]
        context = multiprocessing.get_context("spawn")
        results: multiprocessing.Queue = context.Queue()
        start = time.monotonic()
        deadline = time.time() + args.seconds
        procs = [context.Process(target=worker, args=(server.base_url, deadline, args.threads, results))
                 for _ in range(args.processes)]
        for proc in procs:
            proc.start()
        stats = [results.get(timeout=args.seconds + 120) for _ in procs]
        for proc in procs:
            proc.join(30)
        elapsed = time.monotonic() - start
        answered_429 = server.answered_429

    # the run is measured from the first answered call (the processes' start-up is not the limiter's)
    first = served_at[0][0] if served_at else start
    elapsed = start + elapsed - first
    served = sum(tokens for _, tokens in served_at)
    allowed = args.tpm + args.tpm * elapsed / 60  # the full bucket at the start, then the refill
    steady = [tokens for at, tokens in served_at if at - first >= 60]
    steady_window = max(elapsed - 60, 0)
    calls = sum(s["calls"] for s in stats)
    print(f"run: {elapsed:.0f} s, {args.processes} processes x {args.threads} threads, "
          f"fake limits {args.rpm} RPM / {args.tpm} TPM")
    print(f"calls answered: {calls}; tokens served: {served}")
    print(f"TPM utilisation: {100 * served / allowed:.1f}% of what the limit allows in the run")
    if steady_window > 0:
        rate = sum(steady) / steady_window * 60
        print(f"steady state (after the first minute): {rate:.0f} tokens/min = "
              f"{100 * rate / args.tpm:.1f}% of TPM")
    print(f"HTTP 429: {answered_429} in all, {max(answered_429 - 1, 0)} after the first")
    print(f"client errors: {sum(s['errors'] for s in stats)}; held (waited, no call): "
          f"{sum(s['held'] for s in stats)}; "
          f"mean wait for the budget: {sum(s['waited_s'] for s in stats) / max(calls, 1):.2f} s a call")


if __name__ == "__main__":
    main()
