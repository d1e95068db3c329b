"""The demo stops what it started: its workers, and the embedded Redis when this run started it,
also when it is stopped by SIGTERM (or Ctrl-C) halfway; a Redis that ran before is left running,
and the demo says so and how to stop it."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gabay.cluster.embedded_redis import EmbeddedRedis
from gabay.ops.demo.run import INTERRUPTED
from tests.support.polling import wait_for
from tests.support.processes import LoggedProcess, child_pids


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "data")
    yield server
    server.stop()  # whatever a failed test left


def demo_env(embedded: EmbeddedRedis) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("REDIS_")}
    bin_dir = os.path.dirname(sys.executable)
    return {**env, "EMBEDDED_REDIS": "always", "GABAY_DATA_DIR": str(embedded.directory.parent),
            "PYTHONUNBUFFERED": "1", "PATH": os.pathsep.join([bin_dir, os.environ["PATH"]])}


def descendants(pid: int) -> list[int]:
    children = child_pids(pid)
    return children + [grandchild for child in children for grandchild in descendants(child)]


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def interrupt_once_working(demo: LoggedProcess, signum: int) -> list[int]:
    """Signal the demo once its workers took the first step's work; returns its processes."""
    with demo:
        wait_for(lambda: "Round trip through worker" in demo.log(), timeout=60,
                 message="the first step to pass through a worker")
        started = descendants(demo.pid)
        assert len(started) >= 3  # gabay workers, dramatiq, its worker process
        demo.signal(signum)
        assert demo.wait(timeout=60) == INTERRUPTED, demo.log()
    return started


def test_sigterm_halfway_stops_the_workers_and_the_embedded_redis_it_started(
    embedded: EmbeddedRedis, tmp_path: Path
) -> None:
    demo = LoggedProcess([sys.executable, "-m", "gabay.cli", "demo", "-p", "1", "-t", "2"],
                         demo_env(embedded), tmp_path / "demo.log").launch()
    started = interrupt_once_working(demo, signal.SIGTERM)
    log = demo.log()
    assert "(embedded, started for this demo)" in log
    assert "Interrupted." in log and "Workers stopped (exit code 0)" in log
    assert "Stopped the embedded Redis this demo started" in log
    assert not embedded.is_running()
    assert not [pid for pid in started if alive(pid)]


def test_ctrl_c_leaves_an_embedded_redis_that_ran_before_running_and_says_how_to_stop_it(
    embedded: EmbeddedRedis, tmp_path: Path
) -> None:
    embedded.ensure_running()
    demo = LoggedProcess([sys.executable, "-m", "gabay.cli", "demo", "-p", "1", "-t", "2"],
                         demo_env(embedded), tmp_path / "demo.log").launch()
    started = interrupt_once_working(demo, signal.SIGINT)  # Ctrl-C reaches the demo alone
    assert "Interrupted." in demo.log() and "Workers stopped (exit code 0)" in demo.log()
    assert "keeps running; `gabay redis stop` stops it" in demo.log()
    assert embedded.is_running()
    assert not [pid for pid in started if alive(pid)]
