"""The gabay command: version, configuration, errors as one line, and `gabay workers` supervision."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import redis
from click.testing import CliRunner

import gabay
from gabay.cli import main
from gabay.settings import Settings
from tests.support.polling import wait_for
from tests.support.processes import ROOT, LoggedProcess, child_pids


def test_version() -> None:
    result = CliRunner().invoke(main, ["version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"gabay {gabay.__version__}"


def test_config_masks_every_secret(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-top-secret")
    monkeypatch.setenv("DASHBOARD_PASSWORD", "pw-top-secret")
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0
    assert "top-secret" not in result.output
    assert '"openai_api_key": "**********"' in result.output


def test_a_wrong_setting_is_one_clear_line_and_exit_code_1(monkeypatch) -> None:
    monkeypatch.setenv("FORM_RESPONSE_RATE_LIMIT", "ten")
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "gabay: invalid configuration: FORM_RESPONSE_RATE_LIMIT: invalid rate 'ten': "
        "expected N/s, N/m, N/h or N/<seconds>s, such as 10/m or 5/2s"
    ]


def test_dramatiq_refuses_to_start_on_a_wrong_setting_with_one_line() -> None:
    env = {**os.environ, "FORM_RESPONSE_CONCURRENCY": "zero"}
    result = subprocess.run([sys.executable, "-c", "import gabay.actors"], env=env, cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "gabay: invalid configuration: FORM_RESPONSE_CONCURRENCY: "
        "Input should be a valid integer, unable to parse string as an integer"
    ]


def test_gabay_workers_restarts_dramatiq_when_a_worker_process_dies(
    redis_client: redis.Redis, settings: Settings, tmp_path
) -> None:
    supervisor = LoggedProcess([sys.executable, "-m", "gabay.cli", "workers", "-p", "1", "-t", "1"],
                               {**os.environ, "PYTHONUNBUFFERED": "1"},
                               tmp_path / "supervisor.log").launch()
    try:
        def worker_pids() -> list[int]:
            return [pid for main_pid in child_pids(supervisor.pid) for pid in child_pids(main_pid)]

        # Dramatiq's main process waits up to 30 s for a worker that dies while booting: kill it
        # only once it said it is ready (logged after it told the main process).
        wait_for(lambda: "ready for action" in supervisor.log(), timeout=30,
                 message="the first worker process to be ready")
        [first] = worker_pids()
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: redis_client.get(settings.keys.restarts) == b"1", timeout=30,
                 message="the restart to be counted")
        [second] = wait_for(worker_pids, timeout=30, message="a new worker process")
        assert second != first
    finally:
        code = supervisor.stop(timeout=60)  # killed with its workers if it does not stop in time
    assert code == 0, supervisor.log()
