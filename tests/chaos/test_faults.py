"""Guarantees on their fault paths: a Redis that refuses writes or restarts, a process group
SIGTERM, a message waiting at a gate when the drain begins, a worker whose clock is off.

Each case runs real ``dramatiq gabay.actors`` processes on a redis-server of its own and checks
what every guarantee promises: nothing lost, nothing run twice, limits never exceeded, no retry
spent on a fault of the system.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.chaos.actors import QUEUE
from tests.chaos.cluster import Cluster
from tests.support.limit_checks import max_in_any_window, max_overlap
from tests.support.polling import assert_stays, wait_for

pytestmark = pytest.mark.slow

SKEWED_CLOCK = """\
import os, time
_shift = float(os.environ.get("GABAY_TEST_CLOCK_SHIFT", "0"))
if _shift:
    _time, _time_ns = time.time, time.time_ns
    time.time = lambda: _time() + _shift
    time.time_ns = lambda: _time_ns() + int(_shift * 1e9)
"""


def tokens(cluster: Cluster, event: str, prefix: str = "") -> Counter[str]:
    return Counter(e["token"] for e in cluster.events(event) if e["token"].startswith(prefix))


def test_limits_hold_and_nothing_runs_twice_while_redis_refuses_writes(cluster: Cluster) -> None:
    cluster.start_workers(processes=2, threads=4)
    for i in range(6):
        cluster.send("one_at_a_time", f"cap{i}", 0.4)
    for i in range(12):
        cluster.send("four_per_two_seconds", f"rate{i}")
    wait_for(lambda: len(cluster.events("end")) >= 3, timeout=30, message="the first runs")

    cluster.server.refuse_writes()  # NOREPLICAS on every write, as a primary without replicas
    assert_stays(lambda: max_overlap(cluster.intervals("cap")) <= 1, 3.0,
                 "the cap to hold while Redis refuses writes")
    cluster.server.accept_writes()

    wait_for(lambda: len(tokens(cluster, "end")) == 18, timeout=90, message="every job to run")
    assert tokens(cluster, "start") == Counter({f"cap{i}": 1 for i in range(6)}
                                               | {f"rate{i}": 1 for i in range(12)})
    assert all(e["retries"] == 0 for e in cluster.events("start")), "a fault spent a retry"
    assert max_overlap(cluster.intervals("cap")) == 1
    rated = [e["limiter_start_us"] / 1e6 for e in cluster.events("start") if e["token"].startswith("rate")]
    assert max_in_any_window(rated, 2.0) <= 4
    assert "could not decide" in cluster.logs() or "Fetching from" in cluster.logs()


def test_a_redis_restart_mid_backlog_loses_nothing_and_work_resumes(cluster: Cluster) -> None:
    cluster.start_workers(processes=2, threads=4)
    for i in range(24):
        cluster.send("plain", f"p{i}", 0.3)
    for i in range(8):
        cluster.send("four_per_two_seconds", f"r{i}")
    wait_for(lambda: len(cluster.events("end")) >= 4, timeout=30, message="the first runs")

    cluster.server.stop()
    wait_for(lambda: "Recovery pass failed" in cluster.logs(), timeout=15,
             message="the workers to notice that Redis is gone")
    cluster.server.start()  # the same port and append-only file
    answered = time.time()

    wait_for(lambda: len(tokens(cluster, "end")) == 32, timeout=120, message="every job to run")
    ends = tokens(cluster, "end")
    assert set(ends) == {f"p{i}" for i in range(24)} | {f"r{i}" for i in range(8)}
    assert max(ends.values()) == 1, "a job ran twice"
    resumed = min(e["at"] for e in cluster.events("start") if e["at"] >= answered)
    assert resumed - answered < 5.0, f"work resumed {resumed - answered:.1f} s after Redis answered"


def test_sigterm_to_the_process_group_drains_like_sigterm_to_the_main_process(
        cluster: Cluster) -> None:
    workers = cluster.start_workers(processes=2, threads=2)
    for i in range(3):
        cluster.send("plain", f"g{i}", 2.0)
    wait_for(lambda: len(cluster.events("start")) == 3, timeout=30, message="three running jobs")

    os.killpg(workers.pid, signal.SIGTERM)  # what systemd, docker stop and kill -- -PGID do

    assert workers.wait(timeout=30) == 0
    assert tokens(cluster, "end") == Counter({"g0": 1, "g1": 1, "g2": 1})
    assert tokens(cluster, "start") == Counter({"g0": 1, "g1": 1, "g2": 1})  # none ran twice
    acks = list(cluster.client.scan_iter(match=f"{cluster.keys.namespace}:__acks__.*"))
    assert sum(cluster.client.scard(key) for key in acks) == 0  # nothing left in flight


def test_a_message_waiting_for_a_slot_goes_back_at_sigterm_and_never_starts_there(
        cluster: Cluster) -> None:
    workers = cluster.start_workers(processes=1, threads=2)
    cluster.send("one_at_a_time", "holder", 1.0)
    wait_for(lambda: tokens(cluster, "start")["holder"] == 1, timeout=30, message="the holder")
    cluster.send("one_at_a_time", "waiter", 0.1)
    queue = cluster.keys.queue(QUEUE)
    wait_for(lambda: cluster.client.llen(queue) == 0, timeout=10, message="the waiter fetched")

    workers.signal(signal.SIGTERM)

    assert workers.wait(timeout=30) == 0
    assert tokens(cluster, "end") == Counter({"holder": 1})  # the waiter did not start here
    waiting = cluster.client.llen(queue) + cluster.client.hlen(cluster.keys.delayed_messages(QUEUE))
    assert waiting == 1  # back in Redis, for another process
    cluster.start_workers(processes=1, threads=2)
    wait_for(lambda: tokens(cluster, "end")["waiter"] == 1, timeout=30, message="the waiter to run")
    assert tokens(cluster, "start")["waiter"] == 1


def test_a_worker_whose_clock_runs_ahead_does_not_requeue_work_running_elsewhere(
        cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_workers(processes=1, threads=2)
    cluster.send("plain", "long", 6.0)
    wait_for(lambda: tokens(cluster, "start")["long"] == 1, timeout=30, message="the long job")
    skewed = tmp_path / "skewed-clock"
    skewed.mkdir()
    (skewed / "sitecustomize.py").write_text(SKEWED_CLOCK)
    # This host's clock 16 s ahead: far past HEARTBEAT_TIMEOUT (3 s in the tests).
    cluster.start_workers(processes=1, threads=2,
                          env={"PYTHONPATH": str(skewed), "GABAY_TEST_CLOCK_SHIFT": "16"})

    wait_for(lambda: tokens(cluster, "end")["long"] >= 1, timeout=30, message="the long job to end")
    assert tokens(cluster, "start")["long"] == 1, "the skewed worker requeued a running job"


def test_a_failed_run_whose_retry_redis_refuses_runs_again_instead_of_being_lost(
        cluster: Cluster) -> None:
    cluster.start_workers(processes=1, threads=2)
    cluster.send("fails_once", "f1")
    wait_for(lambda: tokens(cluster, "start")["f1"] == 1, timeout=30, message="the first run")

    cluster.server.refuse_writes()
    (cluster.records / "f1.fail").touch()  # the run fails now; Redis cannot take its retry
    # Logged by gabay when it keeps the message, by Dramatiq when it would drop it.
    refused = ("could not schedule what follows the failed run", "Unexpected failure in after_process")
    wait_for(lambda: any(text in cluster.logs() for text in refused), timeout=15,
             message="the retry to be refused")
    cluster.server.accept_writes()

    wait_for(lambda: tokens(cluster, "end")["f1"] == 1, timeout=30, message="the second run")
    assert tokens(cluster, "start")["f1"] == 2
    assert cluster.client.zcard(cluster.keys.dead_letters(QUEUE)) == 0
    # The failed attempt was real: it counts against max_retries like any failure.
    assert [e["retries"] for e in cluster.events("start") if e["token"] == "f1"] == [0, 1]
