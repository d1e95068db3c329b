"""Benchmark: what an idle worker process costs, gabay against plain Dramatiq.

Each variant runs ``dramatiq <modules> -p 1 -t 8`` alone on a redis-server of its own (a free
port, nothing else talking to it), consuming the same four queues as gabay's actors. After the
boot and ``SETTLE`` seconds, printed: Redis commands per second over ``MEASURE`` seconds (all
commands, and EVALSHA alone, from ``INFO``; and the commands the worker sent, without those its
scripts ran inside Redis, counted with ``MONITOR``), and the resident memory of the worker process
(VmRSS of the child of ``dramatiq``'s main process) and of the main process. No assertions.

Run: ``.venv/bin/python bench/bench_idle.py``. This file is also the worker module for plain
Dramatiq (``BENCH_MODE=plain``).
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as ``python bench/<file>``

import dramatiq
import redis

from bench.common import MODE, modules, namespace_of, plain_broker, rss_mb, worker_env, workers
from gabay.queues import ALL_QUEUES
from tests.chaos.redis_server import RedisServer

SETTLE = 3.0
MEASURE = 10.0
QUEUES = ALL_QUEUES

if MODE == "plain":
    import os

    dramatiq.set_broker(plain_broker(os.environ["REDIS_URL"]))
    for _queue in QUEUES:
        dramatiq.actor(lambda: None, actor_name=f"idle_{_queue}", queue_name=_queue)


class SentCommands:
    """Counts the commands clients send (MONITOR), apart from those scripts run inside Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SentCommands:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self.client.ping()  # one more command, so that the reader wakes and sees the stop
        self._thread.join(timeout=5)

    def _run(self) -> None:
        with self.client.monitor() as monitor:
            while not self._stop.is_set():
                command = monitor.next_command()
                if command.get("client_address") != "lua" and not self._stop.is_set():
                    self.sent += 1


def _counts(client: redis.Redis) -> tuple[int, int]:
    total = int(client.info("stats")["total_commands_processed"])
    evalsha = int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))
    return total, evalsha


def measure(mode: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"bench-idle-{mode}-") as directory:
        server = RedisServer(Path(directory), appendonly=False).start()
        client = server.client()
        try:
            process = workers(f"idle-{mode}", modules(mode, "bench.bench_idle"),
                              worker_env(server.url, BENCH_MODE=mode), processes=1, threads=8)
            with process.start(client, namespace_of(mode), timeout=60):
                time.sleep(SETTLE)
                with SentCommands(server.client()) as sent:
                    before, started = _counts(client), time.monotonic()
                    time.sleep(MEASURE)
                    after, seconds = _counts(client), time.monotonic() - started
                    sent_count = sent.sent
                child = process.child_pids()[0]
                # The measurement's own INFO calls (2 + 2) are not the worker's.
                return {"commands/s": (after[0] - before[0] - 4) / seconds,
                        "sent/s": (sent_count - 4) / seconds,  # without the INFO calls above
                        "evalsha/s": (after[1] - before[1]) / seconds,
                        "worker RSS (MB)": rss_mb(child),
                        "main RSS (MB)": rss_mb(process.pid)}
        finally:
            client.close()
            server.stop()


def main() -> None:
    results = {mode: measure(mode) for mode in ("plain", "gabay")}
    print(f"Idle worker process, dramatiq -p 1 -t 8, queues {', '.join(QUEUES)}; "
          f"{MEASURE:.0f} s after {SETTLE:.0f} s of settling")
    columns = list(results["gabay"])
    print(f"{'':8}" + "".join(f"{name:>18}" for name in columns))
    for mode, row in results.items():
        print(f"{mode:8}" + "".join(f"{row[name]:>18.1f}" for name in columns))


if __name__ == "__main__":
    main()
