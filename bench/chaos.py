"""Soak: faults during a backlog, on a redis-server of the run's own, with real worker processes.

Each scenario runs a backlog through ``dramatiq gabay.actors`` processes while something real
breaks, then prints one row: jobs, completed, lost, run twice (finished more than once), the most
jobs of the cap-1 actor seen at once and the most starts of the 4/2s actor in any 2 s (limiter
clock), retries spent, and how long after the fault ended the work was moving again.

Scenarios: Redis refusing writes for 4 s (``min-replicas-to-write`` without replicas), Redis
stopped for 5 s and restarted twice (append-only file), a worker process SIGKILLed three times,
and SIGTERM to the process group of one of two worker groups. No assertions: figures only (the
same cases are asserted, shorter, by ``tests/chaos``).

Run: ``.venv/bin/python bench/chaos.py`` (a few minutes).
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.update(HEARTBEAT_TIMEOUT="5", DRAIN_TIMEOUT="10",
                  GABAY_DATA_DIR=tempfile.mkdtemp(prefix="gabay-chaos-"))
for name in ("REDIS_URL", "REDIS_HOST", "OPENAI_API_KEY", "DEEPSEEK_API_KEY", "BREVO_API_KEY"):
    os.environ.pop(name, None)

from gabay.settings import load_settings  # noqa: E402
from tests.chaos.cluster import Cluster  # noqa: E402
from tests.chaos.redis_server import RedisServer  # noqa: E402
from tests.support.limit_checks import max_in_any_window, max_overlap  # noqa: E402
from tests.support.polling import wait_for  # noqa: E402

CAPPED, RATED, PLAIN = 12, 16, 60


def backlog(cluster: Cluster) -> int:
    for i in range(CAPPED):
        cluster.send("one_at_a_time", f"cap{i}", 0.3)
    for i in range(RATED):
        cluster.send("four_per_two_seconds", f"rate{i}")
    for i in range(PLAIN):
        cluster.send("plain", f"p{i}", 0.5)
    return CAPPED + RATED + PLAIN


def refuse_writes(cluster: Cluster) -> None:
    cluster.server.refuse_writes()
    _hold(4.0)
    cluster.server.accept_writes()


def restart_redis_twice(cluster: Cluster) -> None:
    for _ in range(2):
        cluster.server.stop()
        _hold(5.0)
        cluster.server.start()
        _hold(3.0)


def kill_a_worker_three_times(cluster: Cluster) -> None:
    for _ in range(3):
        victim = cluster.workers[0]
        victim.kill()
        cluster.workers.remove(victim)
        _hold(2.0)
        cluster.start_workers(processes=1, threads=4)  # appended: the survivor is killed next


def sigterm_one_process_group(cluster: Cluster) -> None:
    os.killpg(cluster.workers[0].pid, signal.SIGTERM)


SCENARIOS: dict[str, Callable[[Cluster], None]] = {
    "writes refused 4 s": refuse_writes,
    "Redis restarted twice (5 s down)": restart_redis_twice,
    "worker SIGKILLed 3 times": kill_a_worker_three_times,
    "group SIGTERM of 1 of 2": sigterm_one_process_group,
}


def _hold(seconds: float) -> None:
    """Keep a fault on for a while: the point of a soak, not a wait for a result."""
    time.sleep(seconds)


def run(name: str, fault: Callable[[Cluster], None], work: Path) -> dict[str, object]:
    server = RedisServer(work / "redis").start()
    cluster = Cluster(server, load_settings(), work)
    try:
        cluster.start_workers(processes=1, threads=4)
        cluster.start_workers(processes=1, threads=4)
        jobs = backlog(cluster)
        wait_for(lambda: len(cluster.events("end")) >= 10, timeout=60, message="the first runs")
        fault(cluster)
        fault_over = time.time()
        if name.startswith("group"):
            cluster.start_workers(processes=1, threads=4)
        wait_for(lambda: len(set(e["token"] for e in cluster.events("end"))) >= jobs, timeout=300,
                 interval=0.2, message="every job")
        ends = Counter(e["token"] for e in cluster.events("end"))
        starts = cluster.events("start")
        rated = [e["limiter_start_us"] / 1e6 for e in starts if e["token"].startswith("rate")]
        moving = [e["at"] for e in starts if e["at"] >= fault_over]
        return {"scenario": name, "jobs": jobs, "completed": len(ends), "lost": jobs - len(ends),
                "run twice": sum(1 for n in ends.values() if n > 1),
                "cap 1: most at once": max_overlap(cluster.intervals("cap")),
                "4/2s: most in 2 s": max_in_any_window(rated, 2.0),
                "retries": sum(e["retries"] for e in starts),
                "moving again (s)": round(min(moving) - fault_over, 2) if moving else "-"}
    finally:
        cluster.close()
        server.stop()


def main() -> None:
    rows = [run(name, fault, Path(tempfile.mkdtemp(prefix="gabay-chaos-")))
            for name, fault in SCENARIOS.items()]
    columns = list(rows[0])
    widths = [max(len(str(c)), *(len(str(r[c])) for r in rows)) for c in columns]
    print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(str(row[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))


if __name__ == "__main__":
    main()
