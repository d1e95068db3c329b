"""Real processes (``dramatiq`` workers, the ``gabay`` command) for tests and benchmarks.

One place starts them, so that every caller gets the same guarantees: output in a log file to
show on failure, a session of their own, and no process left running after a stop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import redis

from tests.support.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]


def child_pids(pid: int) -> list[int]:
    """PIDs of the direct children of ``pid`` (a dramatiq main process's worker processes)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


class LoggedProcess:
    """A command run from the repository root in its own session, its output in ``log_path``."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None

    def launch(self) -> Self:
        """Start the command and return at once."""
        self.launched_ms = int(time.time() * 1000)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.popen = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.popen is not None
        return self.popen.wait(timeout=timeout)

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait; SIGKILL the whole session if it does not exit in time."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self._log.close()
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL the process and all its children at once (a lost host)."""
        os.killpg(self.pid, signal.SIGKILL)
        assert self.popen is not None
        self.popen.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class WorkerProcess(LoggedProcess):
    """One ``dramatiq`` command (a main process and its worker processes).

    ``broker_module`` is the first module dramatiq imports (the one that sets the broker: gabay's
    by default, a plain Dramatiq one in the benchmarks); ``modules`` declare more actors.
    """

    def __init__(self, env: dict[str, str], log_path: Path, *, processes: int = 1,
                 threads: int = 4, queues: tuple[str, ...] = (),
                 broker_module: str = "gabay.actors",
                 modules: tuple[str, ...] = ("tests.support.actors",),
                 shutdown_timeout_ms: int | None = None, extra_args: tuple[str, ...] = ()) -> None:
        argv = [sys.executable, "-m", "dramatiq", broker_module, *modules,
                "--processes", str(processes), "--threads", str(threads)]
        if queues:
            argv += ["--queues", *queues]
        if shutdown_timeout_ms is not None:
            argv += ["--worker-shutdown-timeout", str(shutdown_timeout_ms)]
        super().__init__([*argv, *extra_args], env, log_path)
        self.processes = processes

    def start(self, client: redis.Redis, namespace: str, timeout: float = 30.0) -> Self:
        """Start and wait until every worker process heartbeats in ``namespace`` on ``client``.

        Heartbeats of processes that were there before (other workers) do not count.
        """
        before = set(client.zrange(f"{namespace}:__heartbeats__", 0, -1))
        return self.launch().wait_booted(client, namespace, timeout, others=before)

    def wait_booted(self, client: redis.Redis, namespace: str, timeout: float = 30.0,
                    others: set[bytes] | None = None) -> Self:
        """After ``launch``: wait for a heartbeat of every worker process since the launch."""
        key = f"{namespace}:__heartbeats__"

        def booted() -> bool:
            if not self.running():
                raise AssertionError(f"workers exited with {self.wait()}:\n{self.log()}")
            fresh = set(client.zrangebyscore(key, self.launched_ms, "+inf")) - (others or set())
            return len(fresh) >= self.processes

        wait_for(booted, timeout=timeout, message="worker processes to boot")
        return self

    def child_pids(self) -> list[int]:
        """PIDs of the worker processes under the dramatiq main process."""
        return child_pids(self.pid)
