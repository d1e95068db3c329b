"""The operator commands: status, health, pause, resume, restart, workers-list."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import redis
from click.testing import CliRunner

from gabay.cli import main
from gabay.cluster.status import ClusterStatus
from tests.support import manager_actors as actors
from tests.support.polling import wait_for

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"
MODULES = ("tests.support.manager_actors",)


def gabay(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env)


def test_status_shows_a_table_with_every_queue_and_the_reasons(broker) -> None:
    actors.manager_succeed.send("waits")
    result = gabay("status")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Cluster: UNHEALTHY"
    assert lines[1] == "  - no live worker consumes queue 'generation' (1 waiting, 0 delayed)"
    assert "Workers: 0 processes, 0 threads" in result.stdout
    header = next(line for line in lines if line.startswith("QUEUE"))
    assert header.split() == ["QUEUE", "READY", "HELD", "DELAYED", "RUNNING", "DEAD", "COMPLETED",
                              "FAILED", "CONSUMERS", "PAUSED"]
    generation = next(line for line in lines if line.startswith("generation "))
    assert generation.split()[1:] == ["1", "0", "0", "0", "0", "0", "0", "0"]


def test_status_json_is_exactly_the_status_model(broker, redis_client: redis.Redis) -> None:
    actors.manager_succeed.send_with_options(args=("later",), delay=600_000)
    result = gabay("status", "--json")
    assert result.exit_code == 0
    status = ClusterStatus.model_validate_json(result.stdout)
    assert set(json.loads(result.stdout)) == set(ClusterStatus.model_fields)
    assert status.per_queue["generation"].delayed == 1 and not status.healthy


def test_status_watch_refreshes_until_ctrl_c(broker, monkeypatch) -> None:
    naps = []

    def interrupted_after_two(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("gabay.cli.operations.time.sleep", interrupted_after_two)
    result = gabay("status", "--watch")
    assert result.exit_code == 0
    assert naps == [2.0, 2.0] and result.stdout.count("Cluster: healthy") == 2


def test_health_exit_codes_follow_the_health_rules(broker) -> None:
    healthy = gabay("health")
    assert (healthy.exit_code, healthy.stdout.strip()) == (0, "healthy")

    actors.manager_feedback.send("nobody-consumes-this")
    unhealthy = gabay("health")
    assert unhealthy.exit_code == 1
    assert unhealthy.stderr.strip() == (
        "unhealthy: no live worker consumes queue 'form-response-processing' (1 waiting, 0 delayed)"
    )
    disabled = gabay("health", env={"ENABLE_FORM_RESPONSE_WORKER": "false"})
    assert disabled.exit_code == 0, disabled.stderr


def test_pause_and_resume_report_the_paused_queues(redis_client: redis.Redis) -> None:
    assert gabay("pause", "generation", "validation").stdout.strip() == "paused: generation, validation"
    assert gabay("resume", "validation").stdout.strip() == "resumed; still paused: generation"
    everything = gabay("pause")
    assert everything.exit_code == 0 and "retrieval" in everything.stdout
    assert gabay("resume").stdout.strip() == "resumed; still paused: none"


@pytest.mark.parametrize("command", [["pause", "generation", "nope"], ["resume", "nope"]])
def test_an_unknown_queue_is_one_clear_line_and_exit_code_1(redis_client, command: list[str]) -> None:
    result = gabay(*command)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "gabay: unknown queue 'nope'; known queues: retrieval, generation, validation, grading, "
        "analytics, form-response-processing, system, backups, reports, digests"
    ]
    assert redis_client.exists("gabay:pause") == 0


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["pause"], ["resume", "system"],
                                     ["restart"], ["workers-list"]])
def test_an_unreachable_redis_is_one_clear_line_and_exit_code_1(command: list[str]) -> None:
    result = gabay(*command, env={"REDIS_URL": CLOSED_PORT_URL})
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["gabay: Redis does not answer at 127.0.0.1:1: ConnectionError"]


def test_health_with_an_unreachable_redis_from_a_separate_process() -> None:
    env = {**os.environ, "REDIS_URL": CLOSED_PORT_URL}
    result = subprocess.run([sys.executable, "-m", "gabay.cli", "health"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == "unhealthy: Redis does not answer at 127.0.0.1:1: ConnectionError"


def test_workers_list_shows_every_live_process_and_restart_wait_replaces_them(start_workers) -> None:
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])
    workers = start_workers(processes=2, threads=2, modules=MODULES, env={"PATH": path})
    listed = wait_for(lambda: len(rows := json.loads(gabay("workers-list", "--json").stdout)) == 2 and rows,
                      timeout=30, message="two registered processes")
    assert {row["pid"] for row in listed} == set(workers.child_pids())
    table = gabay("workers-list").stdout
    assert all(str(pid) in table for pid in workers.child_pids())

    result = gabay("restart", "--wait", "--timeout", "90")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "restart 1 requested; 2 worker processes will drain and restart",
        "restarted: 2 worker processes running",
    ]
    after = json.loads(gabay("workers-list", "--json").stdout)
    assert not {row["worker_id"] for row in after} & {row["worker_id"] for row in listed}
