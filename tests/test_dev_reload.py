"""Dev auto-reload: saving a .py file restarts the workers with the new code.

Each test runs the real command on a copy of the code in a temporary directory (first on
PYTHONPATH, so the workers import the copy and the watcher watches it), edits a file there and
waits for a new worker process to boot. Dramatiq's own default pattern (``**.py``) never matches:
watchdog matches a pattern against the whole path, where ``*`` stops at ``/``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import redis
from watchdog.utils.patterns import match_any_paths

import gabay
from gabay.ops.supervisor import WATCH_PATTERN
from gabay.settings import Settings
from tests.support.polling import wait_for
from tests.support.processes import ROOT, LoggedProcess, child_pids

READY = "Worker process is ready for action"


def env_with(path: Path) -> dict[str, str]:
    bin_dir = os.path.dirname(sys.executable)  # the reload re-executes the python found in PATH
    return {**os.environ, "PYTHONPATH": str(path), "PYTHONUNBUFFERED": "1",
            "PATH": os.pathsep.join([bin_dir, os.environ["PATH"]])}


def worker_pids(process: LoggedProcess, depth: int) -> list[int]:
    """The worker processes ``depth`` levels below ``process`` (2 under gabay workers' supervisor)."""
    pids = [process.pid]
    for _ in range(depth):
        pids = [child for pid in pids for child in child_pids(pid)]
    return pids


def reloads_after_an_edit(process: LoggedProcess, edited: Path, depth: int) -> None:
    with process:
        wait_for(lambda: READY in process.log(), timeout=40, message="the first worker process")
        [first] = wait_for(lambda: worker_pids(process, depth), timeout=10, message="its pid")
        edited.write_text(edited.read_text() + "\n# edited by the reload test\n")
        wait_for(lambda: process.log().count(READY) >= 2, timeout=30,
                 message=f"a reload after editing {edited.name}:\n{process.log()}")
        [second] = wait_for(lambda: worker_pids(process, depth), timeout=10, message="the new pid")
        assert second != first
        assert "Detected changes to" in process.log()
    assert process.popen is not None and process.popen.returncode == 0, process.log()


def test_the_watch_pattern_matches_python_files_at_any_depth_where_dramatiqs_default_does_not() -> None:
    path = str(Path(gabay.__file__).parent / "cluster" / "status.py")
    assert match_any_paths([path], included_patterns=[WATCH_PATTERN])
    assert not match_any_paths([path], included_patterns=["**.py"])  # Dramatiq's default
    assert not match_any_paths([path.removesuffix(".py") + ".pyc"], included_patterns=[WATCH_PATTERN])


def test_bin_dev_workers_reloads_when_a_gabay_module_changes(
    tmp_path: Path, redis_client: redis.Redis, settings: Settings
) -> None:
    code = tmp_path / "code"
    shutil.copytree(Path(gabay.__file__).parent, code / "gabay",
                    ignore=shutil.ignore_patterns("__pycache__"))
    process = LoggedProcess([str(ROOT / "bin" / "dev-workers"), "--threads", "1"], env_with(code),
                            tmp_path / "dev-workers.log").launch()
    reloads_after_an_edit(process, code / "gabay" / "queues.py", depth=2)


def test_plain_dramatiq_watch_reloads_with_the_documented_pattern(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    code = tmp_path / "code"
    (code / "reload_probe").mkdir(parents=True)
    (code / "reload_probe" / "__init__.py").write_text('"""A module to edit."""\n')
    argv = [sys.executable, "-m", "dramatiq", "gabay.actors", "reload_probe", "--processes", "1",
            "--threads", "1", "--watch", str(code), "--watch-include", "**/*.py"]
    process = LoggedProcess(argv, env_with(code), tmp_path / "dramatiq.log").launch()
    reloads_after_an_edit(process, code / "reload_probe" / "__init__.py", depth=1)
