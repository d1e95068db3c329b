"""Autoscaling: the desired process count (pure), the hysteresis (fake clock), the status and
/metrics fields on the real Redis, and ``gabay workers --autoscale`` with real processes."""

from __future__ import annotations

import os
import signal
import sys

import dramatiq
import pytest
import redis
from click.testing import CliRunner
from werkzeug.test import Client

from gabay.broker import GabayBroker
from gabay.cli import main
from gabay.cluster.autoscale import (
    FEEDBACK_ACTOR,
    QueueLimit,
    QueueLoad,
    desired_replicas,
    queue_limits,
    wanted_concurrency,
)
from gabay.cluster.autoscale_log import KEEP, AutoscaleLog, ScaleDecision
from gabay.cluster.status_reader import StatusReader
from gabay.ops.autoscaler import Autoscaler
from gabay.ops.scaling_policy import Hysteresis, Observation, ScalingPolicy
from gabay.ops.supervisor import WorkerCommand
from gabay.queues import FORM_RESPONSE, GENERATION, SYSTEM
from gabay.settings import Settings
from tests.support.autoscale_actors import autoscale_work
from tests.support.dashboard import PASSWORD, make_app, with_password
from tests.support.polling import wait_for
from tests.support.processes import LoggedProcess, child_pids
from tests.test_web_api import metric_samples

FEEDBACK = QueueLimit(actor=FEEDBACK_ACTOR, cap=3, rate_per_second=10 / 60)


def desired(loads: dict[str, QueueLoad], threads: int = 8, minimum: int = 1, maximum: int = 10) -> int:
    return desired_replicas(loads, threads=threads, minimum=minimum, maximum=maximum,
                            default_run_seconds=10.0)[0]


# -- the arithmetic ---------------------------------------------------------------------------------

def test_a_rate_limited_queue_never_asks_for_more_than_its_limit_can_use() -> None:
    for depth in (1, 10, 10_000, 1_000_000):
        for run_seconds in (0.5, 5.0, 60.0, 3600.0):
            load = QueueLoad(waiting=depth, limit=FEEDBACK, average_run_seconds=run_seconds)
            assert wanted_concurrency(load, 10.0) <= 3  # the cap
            assert desired({FORM_RESPONSE: load}, threads=8) == 1  # ceil(3 / 8)
            assert desired({FORM_RESPONSE: load}, threads=1, maximum=100) <= 3
    # Little's law below the cap: 10/min x 6 s = 1 job in flight, however deep the queue
    fast = QueueLoad(waiting=10_000, limit=FEEDBACK, average_run_seconds=6.0)
    assert wanted_concurrency(fast, 10.0) == 1
    assert desired({FORM_RESPONSE: fast}, threads=1, maximum=100) == 1
    # unknown run time: the default (10 s -> 1.7 -> 2 jobs in flight)
    assert wanted_concurrency(QueueLoad(waiting=500, limit=FEEDBACK), 10.0) == 2


def test_a_deep_queue_asks_for_more_processes_than_a_shallow_one() -> None:
    assert desired({SYSTEM: QueueLoad(waiting=3)}, threads=4) == 1
    assert desired({SYSTEM: QueueLoad(waiting=20)}, threads=4) == 5
    assert desired({SYSTEM: QueueLoad(waiting=12, running=4, held=4)}, threads=4) == 5
    # a capped queue stops at its cap
    capped = QueueLimit(actor="draft_questions", cap=3)
    assert desired({GENERATION: QueueLoad(waiting=1000, limit=capped)}, threads=1) == 3


def test_the_total_is_bounded_by_min_and_max_and_queues_share_processes() -> None:
    assert desired({}, minimum=2) == 2
    assert desired({SYSTEM: QueueLoad()}, minimum=0) == 0
    assert desired({SYSTEM: QueueLoad(waiting=10_000)}, maximum=4) == 4
    total, per_queue = desired_replicas(
        {SYSTEM: QueueLoad(waiting=5), GENERATION: QueueLoad(waiting=3),
         FORM_RESPONSE: QueueLoad(waiting=99, limit=FEEDBACK, average_run_seconds=60)},
        threads=4, minimum=1, maximum=10, default_run_seconds=10)
    assert per_queue == {SYSTEM: 2, GENERATION: 1, FORM_RESPONSE: 1}
    assert total == 3  # ceil((5 + 3 + 3) / 4): one process serves every queue


def test_a_paused_queue_wants_only_its_running_jobs() -> None:
    assert wanted_concurrency(QueueLoad(waiting=500, running=2, paused=True), 10.0) == 2


def test_the_limits_come_from_the_settings() -> None:
    limits = queue_limits(Settings(form_response_concurrency=5, form_response_rate_limit="30/m",
                                   question_generation_concurrency=2))
    assert limits[FORM_RESPONSE] == QueueLimit(actor=FEEDBACK_ACTOR, cap=5, rate_per_second=0.5)
    assert limits[GENERATION].cap == 2
    assert SYSTEM not in limits


# -- the hysteresis ---------------------------------------------------------------------------------

def run_policy(policy: ScalingPolicy, seen: list[tuple[float, int, int, float]]) -> list:
    """Feed (now, desired, current, oldest wait) observations; the steps with their times."""
    steps = []
    for now, wanted, current, wait in seen:
        step = policy.observe(Observation(now=now, desired=wanted, current=current, oldest_wait=wait))
        if step:
            steps.append((now, step.direction, step.before, step.after))
    return steps


def test_hysteresis_grows_after_the_need_held_and_shrinks_after_a_longer_quiet() -> None:
    policy = ScalingPolicy(Hysteresis(up_after=10, down_after=60, cooldown=20, up_wait=2))
    seen = [(0, 4, 1, 5), (5, 4, 1, 6), (10, 3, 1, 8)]           # need held 10 s: up to 3 (the floor)
    seen += [(15, 4, 3, 9), (25, 4, 3, 9), (35, 4, 3, 9)]        # need again; cooldown until 30
    seen += [(40, 1, 4, 0)] + [(40 + t, 1, 4, 0) for t in range(10, 61, 10)]  # quiet 60 s: down
    steps = run_policy(policy, seen)
    assert steps == [(10, "up", 1, 3), (35, "up", 3, 4), (100, "down", 4, 1)]


def test_hysteresis_does_not_flap_on_a_blip_or_young_messages() -> None:
    policy = ScalingPolicy(Hysteresis(up_after=10, down_after=60, cooldown=20, up_wait=2))
    blips = [(t, 4 if t % 20 == 0 else 1, 1, 5) for t in range(0, 200, 5)]   # need never held 10 s
    assert run_policy(policy, blips) == []
    young = [(t, 4, 1, 0.5) for t in range(200, 300, 5)]                      # served within 0.5 s
    assert run_policy(policy, young) == []
    dips = [(t, 1 if t % 50 else 2, 2, 0) for t in range(300, 600, 5)]        # quiet broken each 50 s
    assert run_policy(policy, dips) == []


def test_hysteresis_shrinks_to_the_peak_of_the_quiet_window_and_waits_for_drains() -> None:
    policy = ScalingPolicy(Hysteresis(up_after=0, down_after=30, cooldown=0, up_wait=0))
    steps = run_policy(policy, [(0, 3, 6, 0), (10, 2, 6, 0), (20, 1, 6, 0), (30, 1, 6, 0)])
    assert steps == [(30, "down", 6, 3)]
    # while a removed process drains, nothing is decided
    assert policy.observe(Observation(now=100, desired=6, current=3, oldest_wait=9, draining=1)) is None
    assert policy.observe(Observation(now=101, desired=6, current=3, oldest_wait=9)).after == 6


# -- Redis: the decision log, status and /metrics ---------------------------------------------------

def test_the_decision_log_keeps_the_latest_50_newest_first(redis_client: redis.Redis,
                                                           settings: Settings) -> None:
    log = AutoscaleLog(redis_client, settings.keys)
    for index in range(KEEP + 5):
        log.record(ScaleDecision(at=float(index), direction="up", before=1, after=2, desired=2,
                                 reason=f"r{index}"))
    recent = log.recent()
    assert len(recent) == KEEP and redis_client.llen(settings.keys.autoscale_decisions) == KEEP
    assert recent[0]["reason"] == f"r{KEEP + 4}" and recent[0]["after"] == 2
    assert log.recent(limit=3)[2]["reason"] == f"r{KEEP + 2}"


def enqueue(broker: GabayBroker, queue: str, count: int) -> None:
    for index in range(count):
        broker.enqueue(dramatiq.Message(queue_name=queue, actor_name="probe", args=(f"t{index}",),
                                        kwargs={}, options={}))


def test_status_and_metrics_show_desired_replicas_within_the_limits(
    broker: GabayBroker, redis_client: redis.Redis, settings: Settings
) -> None:
    enqueue(broker, FORM_RESPONSE, 50)
    enqueue(broker, GENERATION, 40)
    enqueue(broker, SYSTEM, 20)
    redis_client.hset(settings.keys.cap_stats(FEEDBACK_ACTOR), "avg", "60000")  # 60 s a run

    status = StatusReader(settings, redis_client).read()
    assert status.per_queue[FORM_RESPONSE].desired_replicas == 1   # min(50, cap 3, 10) / 8 threads
    assert status.per_queue[GENERATION].desired_replicas == 1      # cap 3
    assert status.per_queue[SYSTEM].desired_replicas == 3          # 20 / 8
    assert status.desired_replicas == 4                            # ceil((3 + 3 + 20) / 8)
    assert '"desired_replicas":4' in status.model_dump_json()

    app = Client(make_app(with_password(settings), redis_client, broker))
    samples = metric_samples(app.get("/metrics", auth=("admin", PASSWORD)).get_data(as_text=True))
    assert samples[("gabay_desired_replicas", (("queue", FORM_RESPONSE),))] == 1
    assert samples[("gabay_desired_replicas", (("queue", SYSTEM),))] == 3
    assert samples[("gabay_cluster_desired_replicas", ())] == 4


def test_an_unreachable_redis_starts_and_stops_nothing(settings: Settings) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    command = WorkerCommand(settings=settings, processes=1, threads=1, queues=(SYSTEM,))
    scaler = Autoscaler.build(command, dead, 1, 4)
    scaler._observe(ScalingPolicy(Hysteresis(up_after=0, cooldown=0, up_wait=0)))
    assert scaler.slots == []


def test_autoscale_bounds_are_checked_before_anything_starts() -> None:
    for value in ("3", "2,1", "a,b", "0,0"):
        result = CliRunner().invoke(main, ["workers", "--autoscale", value])
        assert result.exit_code == 2 and "--autoscale" in result.output, value
    result = CliRunner().invoke(main, ["workers", "--autoscale", "1,2", "-p", "3"])
    assert result.exit_code == 2 and "drop --processes" in result.output


# -- real processes ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_gabay_workers_autoscale_grows_under_a_backlog_and_drains_back_when_idle(
    redis_client: redis.Redis, settings: Settings, broker: GabayBroker, tmp_path
) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "AUTOSCALE_INTERVAL": "0.2",
           "AUTOSCALE_UP_AFTER": "0.4", "AUTOSCALE_DOWN_AFTER": "1.5", "AUTOSCALE_COOLDOWN": "0.5",
           "AUTOSCALE_UP_WAIT": "0.2", "MONITOR_INTERVAL": "1"}
    supervisor = LoggedProcess(
        [sys.executable, "-m", "gabay.cli", "workers", "--autoscale", "1,2", "-t", "1", "-Q", SYSTEM,
         "--module", "tests.support.autoscale_actors"], env, tmp_path / "autoscale.log").launch()
    done = settings.keys.test("autoscale-done")
    log = AutoscaleLog(redis_client, settings.keys)
    try:
        wait_for(lambda: "ready for action" in supervisor.log(), timeout=30, message="the first worker")
        assert len(child_pids(supervisor.pid)) == 1
        tokens = [f"job{index}" for index in range(16)]
        for token in tokens:
            autoscale_work.send(token, 0.3)

        wait_for(lambda: len(child_pids(supervisor.pid)) == 2, timeout=15, message="a second command")
        wait_for(lambda: redis_client.llen(done) >= len(tokens), timeout=30, message="every job")
        wait_for(lambda: len(child_pids(supervisor.pid)) == 1, timeout=15, message="the shrink")
        wait_for(lambda: "drained and stopped (code 0)" in supervisor.log(), timeout=10,
                 message="the drain's clean exit")

        finished = [entry.decode().split(":") for entry in redis_client.lrange(done, 0, -1)]
        assert sorted(token for token, _ in finished) == sorted(tokens)  # nothing lost, none twice
        assert len({pid for _, pid in finished}) == 2                      # both processes worked
        directions = [(d["direction"], d["before"], d["after"]) for d in reversed(log.recent())]
        assert directions == [("up", 1, 2), ("down", 2, 1)]
        assert "Autoscale: up 1 -> 2 processes" in supervisor.log()
        wait_for(lambda: "Autoscale - Processes: 1 (draining 0)" in supervisor.log(), timeout=5,
                 message="the autoscaler's monitoring line")

        # a crashed command is restarted alone, and counted
        [main_pid] = child_pids(supervisor.pid)
        os.kill(child_pids(main_pid)[0], signal.SIGKILL)
        wait_for(lambda: redis_client.get(settings.keys.restarts) == b"1", timeout=15,
                 message="the restart to be counted")
        wait_for(lambda: [p for m in child_pids(supervisor.pid) for p in child_pids(m)], timeout=20,
                 message="a new worker process")
    finally:
        code = supervisor.stop(timeout=30)
    assert code == 0, supervisor.log()
