"""A configuration or connection problem is one line naming the setting or host:port, never a
traceback: for `dramatiq gabay.actors` (including `--queues` naming no queue), the `gabay` commands
and the dashboard, each run as the real command in its own process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.support.polling import wait_for
from tests.support.processes import ROOT, LoggedProcess

BAD_URL = "http://:hunter2@localhost:1/"
#: Dramatiq's main process logs these itself ("booting up", "exited unexpectedly"): not ours to
#: silence from a worker process, so they are the only other lines allowed.
DRAMATIQ_OWN = "[dramatiq.MainProcess]"


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])  # no reload warning
    environ = {**os.environ, "PATH": path, "PYTHONUNBUFFERED": "1", "REDIS_CONNECT_TIMEOUT": "2", **env}
    return subprocess.run(argv, env=environ, cwd=ROOT, capture_output=True, text=True, timeout=60)


def dramatiq(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "dramatiq", "gabay.actors", "--processes", "2",
                "--threads", "1", *args], **env)


def gabay(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "gabay.cli", *args], **env)


def our_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr and stdout without Dramatiq's main-process lines; no traceback anywhere."""
    output = result.stderr + result.stdout
    assert "Traceback" not in output, output
    return [line for line in output.splitlines() if DRAMATIQ_OWN not in line]


def test_dramatiq_with_a_url_that_is_not_redis_prints_one_line_naming_the_setting() -> None:
    result = dramatiq(REDIS_URL=BAD_URL)
    assert result.returncode == 2  # Dramatiq's "import failed": gabay workers does not restart it
    assert our_lines(result) == [
        "gabay: invalid configuration: REDIS_URL: invalid Redis URL http://***@localhost:1/: Redis "
        "URL must specify one of the following schemes (redis://, rediss://, unix://, redis+sentinel://)"
    ]  # one line for two worker processes, and never the password


def test_dramatiq_with_a_wrong_port_names_host_and_port_without_the_password(closed_port: int) -> None:
    result = dramatiq(REDIS_URL=f"redis://:hunter2@127.0.0.1:{closed_port}/0")
    assert result.returncode == 3  # Dramatiq's "broker connection failed during worker startup"
    assert our_lines(result) == [f"gabay: Redis does not answer at 127.0.0.1:{closed_port}: ConnectionError"]
    assert "hunter2" not in result.stderr


def test_dramatiq_refuses_a_queue_name_that_nothing_declares() -> None:
    result = dramatiq("--queues", "system", "bogus")
    assert result.returncode == 2
    # One line of ours; the other worker process, stopped by Dramatiq's main process while it
    # boots, may log a line of its own (never a traceback: our_lines checks).
    [line] = [text for text in our_lines(result) if not text.startswith("[")]
    assert line.startswith("gabay: unknown queue 'bogus' in --queues; known queues: retrieval, "
                           "generation, validation, grading, analytics, form-response-processing, system")


def test_gabay_commands_name_the_setting_of_a_url_that_is_not_redis() -> None:
    result = gabay("status", REDIS_URL=BAD_URL)
    assert result.returncode == 1
    assert our_lines(result) == [
        "gabay: invalid configuration: REDIS_URL: invalid Redis URL http://***@localhost:1/: Redis "
        "URL must specify one of the following schemes (redis://, rediss://, unix://, redis+sentinel://)"
    ]


@pytest.mark.parametrize("command", [["status"], ["restart"], ["workers"]])
def test_gabay_commands_name_host_and_port_of_a_redis_that_does_not_answer(
    command: list[str], closed_port: int
) -> None:
    result = gabay(*command, REDIS_URL=f"redis://:hunter2@127.0.0.1:{closed_port}/0")
    assert result.returncode == 1
    assert our_lines(result) == [f"gabay: Redis does not answer at 127.0.0.1:{closed_port}: ConnectionError"]


def test_a_wrong_password_names_the_settings_that_hold_it() -> None:
    result = gabay("status", REDIS_URL="redis://127.0.0.1:6379/7", REDIS_PASSWORD="not-the-password")
    assert result.returncode == 1
    [line] = our_lines(result)
    assert line.startswith("gabay: Redis at 127.0.0.1:6379 refused the password")
    assert "REDIS_PASSWORD" in line and "not-the-password" not in line


def test_the_dashboard_stops_on_a_bad_url_and_warns_once_about_a_redis_that_does_not_answer(
    closed_port: int, tmp_path
) -> None:
    bad = gabay("dashboard", "--port", "0", REDIS_URL=BAD_URL)
    assert bad.returncode == 1
    assert our_lines(bad) == [
        "gabay: invalid configuration: REDIS_URL: invalid Redis URL http://***@localhost:1/: Redis "
        "URL must specify one of the following schemes (redis://, rediss://, unix://, redis+sentinel://)"
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "REDIS_URL": f"redis://127.0.0.1:{closed_port}/0"}
    with LoggedProcess([sys.executable, "-m", "gabay.cli", "dashboard", "--port", "0"], env,
                       tmp_path / "dashboard.log").launch() as dashboard:
        wait_for(lambda: "gabay dashboard on" in dashboard.log(), timeout=30,
                 message="the dashboard to serve")
    log = dashboard.log()
    assert "Traceback" not in log
    warnings = [line for line in log.splitlines() if "does not answer" in line]
    assert warnings == [f"gabay: warning: Redis does not answer at 127.0.0.1:{closed_port}: "
                        "ConnectionError; the dashboard shows Redis as down until it answers"]
