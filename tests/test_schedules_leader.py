"""The schedules' leader with real worker processes: each slot fires once across 3 processes, a
SIGKILLed leader is replaced within the lease time and its missed slot follows the misfire policy,
and while Redis refuses writes nothing fires, with nothing fired twice once it accepts them again.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from gabay.keys import Keys
from gabay.schedules.firing import run_id
from gabay.settings import Settings
from tests.chaos.redis_server import RedisServer
from tests.support.polling import assert_stays, wait_for
from tests.support.processes import WorkerProcess

LEASE = 1.5
SCHEDULES = """
[schedules.every]
cron = "* * * * * *"
actor = "scheduled_tick"
args = ["every"]
grace_seconds = 1

[schedules.late]
cron = "*/3 * * * * *"
actor = "scheduled_tick"
args = ["late"]
misfire = "run_once"
grace_seconds = 0.5

[schedules.skipped]
cron = "*/3 * * * * *"
actor = "scheduled_tick"
args = ["skipped"]
misfire = "skip"
grace_seconds = 0.5
"""


class Cluster:
    """Worker processes (one dramatiq command each) with the schedules above, on one Redis."""

    def __init__(self, client: redis.Redis, keys: Keys, env: dict[str, str], tmp_path: Path) -> None:
        self.client = client
        self.keys = keys
        schedules = tmp_path / "schedules.toml"
        schedules.write_text(SCHEDULES)
        self.env = {**env, "PYTHONUNBUFFERED": "1", "SCHEDULES_FILE": str(schedules),
                    "SCHEDULE_LEASE_SECONDS": str(LEASE), "SCHEDULE_TICK_SECONDS": "0.1"}
        self.tmp_path = tmp_path
        self.processes: list[WorkerProcess] = []

    def start(self, count: int) -> None:
        """Launch ``count`` dramatiq commands at once, then wait until all have booted."""
        before = set(self.client.zrange(f"{self.keys.namespace}:__heartbeats__", 0, -1))
        fresh = [WorkerProcess(self.env, self.tmp_path / f"workers-{i}.log", processes=1, threads=2,
                               modules=("tests.support.schedule_actors",)).launch()
                 for i in range(len(self.processes), len(self.processes) + count)]
        self.processes += fresh
        for process in fresh:
            process.wait_booted(self.client, self.keys.namespace, others=before)

    def now_ms(self) -> int:
        seconds, micros = self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def leader(self) -> str | None:
        value = self.client.get(self.keys.schedule_leader)
        return value.decode() if value else None

    def leader_process(self) -> WorkerProcess:
        holder = self.leader()
        assert holder is not None
        pid = int(holder.split(" ", 1)[1].split(":")[1])
        return next(p for p in self.processes if pid in p.child_pids())

    def history(self, name: str) -> list[dict[str, Any]]:
        """Every fire and misfire skip of schedule ``name``, oldest first."""
        entries = [json.loads(e) for e in self.client.lrange(self.keys.schedule_history(name), 0, -1)]
        return [{**e, "slot": int(e["slot"]), "at": int(e["at"])} for e in reversed(entries)]

    def fired(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.history(name) if e["action"] == "fire"]

    def runs(self, tag: str) -> list[dict[str, Any]]:
        return [json.loads(r) for r in self.client.lrange(self.keys.test("scheduled", tag), 0, -1)]

    def logs(self) -> str:
        return "\n".join(p.log() for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.stop(timeout=30)


@pytest.fixture
def make_cluster(tmp_path: Path, settings: Settings, worker_env: dict[str, str]) -> Iterator:
    made: list[Cluster] = []

    def make(client: redis.Redis, env: dict[str, str] | None = None) -> Cluster:
        cluster = Cluster(client, settings.keys, {**worker_env, **(env or {})}, tmp_path)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop()


def assert_each_slot_fired_once(cluster: Cluster, name: str) -> list[int]:
    """Each fired slot of ``name`` has one fire with its own id, and ran under that id only."""
    fired = cluster.fired(name)
    slots = [e["slot"] for e in fired]
    assert len(slots) == len(set(slots)), f"a slot of {name} fired twice: {fired}"
    assert all(e["message_id"] == run_id(cluster.keys, name, e["slot"]) for e in fired)
    ran = {}
    for run in cluster.runs(name):
        assert ran.setdefault(run["slot"], run["message_id"]) == run["message_id"]
    assert set(ran) <= set(slots)
    return slots


def test_three_processes_fire_each_slot_once_and_a_killed_leader_is_replaced(
        make_cluster: Any, redis_client: redis.Redis) -> None:
    cluster = make_cluster(redis_client)
    cluster.start(3)
    wait_for(lambda: len(cluster.fired("every")) >= 4, timeout=10, message="four every-second fires")
    first = cluster.leader()
    steady = cluster.fired("every")
    assert len({e["leader"] for e in steady}) == 1  # one leader, however many processes
    gaps = {b["slot"] - a["slot"] for a, b in itertools.pairwise(steady[1:])}
    assert gaps <= {1000}, steady  # every second, none skipped (the first may follow a boot gap)

    # Kill the leader 0.3 s before a */3 slot: nobody fires that slot within its 0.5 s grace.
    now = cluster.now_ms()
    slot = (now // 3000 + 1) * 3000 + (3000 if (now // 3000 + 1) * 3000 - now < 1500 else 0)
    victim = cluster.leader_process()
    wait_for(lambda: cluster.now_ms() >= slot - 300, timeout=8, interval=0.01, message="the slot")
    victim.kill()
    killed_at = cluster.now_ms()
    second = wait_for(lambda: (holder := cluster.leader()) not in (None, first) and holder,
                      timeout=LEASE + 2, interval=0.01, message="another leader")
    took = cluster.now_ms() - killed_at
    assert took <= LEASE * 1000 + 300, f"took over after {took} ms"
    assert second.split(" ")[0] != first.split(" ")[0]  # a new fencing token

    def entries_for(name: str, at: int) -> list[dict[str, Any]]:
        return [e for e in cluster.history(name) if e["slot"] == at]

    wait_for(lambda: entries_for("late", slot) and entries_for("skipped", slot), timeout=5,
             message="the missed slot handled")
    (late,) = entries_for("late", slot)
    assert (late["action"], late["reason"], late["leader"]) == ("fire", "late", second)
    assert late["at"] - slot > 500
    (skipped,) = entries_for("skipped", slot)
    assert skipped["action"] == "skip" and skipped["reason"].startswith("missed by")

    wait_for(lambda: entries_for("late", slot + 3000) and entries_for("skipped", slot + 3000),
             timeout=8, message="the next slot")
    for name in ("late", "skipped"):
        (on_time,) = entries_for(name, slot + 3000)
        assert (on_time["action"], on_time["reason"]) == ("fire", "")
    wait_for(lambda: {slot, slot + 3000} <= {r["slot"] for r in cluster.runs("late")}, timeout=5,
             message="the late run and the next one to run")
    wait_for(lambda: slot + 3000 in {r["slot"] for r in cluster.runs("skipped")}, timeout=5,
             message="the next skipped-policy run")
    assert slot not in {r["slot"] for r in cluster.runs("skipped")}
    for name in ("every", "late", "skipped"):
        assert_each_slot_fired_once(cluster, name)

    def last_run() -> dict[str, str]:
        raw = redis_client.hgetall(cluster.keys.schedule_state("late"))
        return {k.decode(): v.decode() for k, v in raw.items()}

    done = wait_for(lambda: (run := last_run())["outcome"] == "succeeded" and run, timeout=5,
                    message="the last run's outcome")
    assert done["message_id"] == run_id(cluster.keys, "late", int(done["run_slot"]))
    assert int(done["run_slot"]) >= slot + 3000 and done["attempts"] == "1"


def test_redis_refusing_writes_fires_nothing_and_nothing_twice_after(
        make_cluster: Any, tmp_path: Path, redis_client: redis.Redis) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=False).start()
    client = server.client()
    try:
        cluster = make_cluster(client, {"REDIS_URL": server.url})
        cluster.start(2)
        wait_for(lambda: len(cluster.fired("every")) >= 2, timeout=10, message="two fires")
        server.refuse_writes()
        refused_at = cluster.now_ms()
        count = len(cluster.history("every"))
        assert_stays(lambda: len(cluster.history("every")) == count, 2.5, "no fire while refused")
        server.accept_writes()
        accepted_at = cluster.now_ms()
        wait_for(lambda: len(cluster.fired("every")) >= count + 2, timeout=8, message="fires again")
        slots = assert_each_slot_fired_once(cluster, "every")
        assert not [s for s in slots if refused_at + 200 < s < accepted_at - 1000]
        for process in cluster.processes:  # logged once per outage, and its end once
            wait_for(lambda p=process: "Scheduling (the leader lease and firing) works again" in p.log(),
                     timeout=3, message="the end of the outage logged")
            log = process.log()
            assert log.count("Scheduling (the leader lease and firing) failed") == 1, log
            assert log.count("Scheduling (the leader lease and firing) works again") == 1, log
    finally:
        client.close()
        cluster.stop()
        server.stop()
