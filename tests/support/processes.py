"""Real ``dramatiq gabay.actors`` worker processes for tests that cross a process boundary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from tests.support.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """One ``dramatiq`` command (a main process and its worker processes)."""

    def __init__(self, env: dict[str, str], log_path: Path, *, processes: int = 1,
                 threads: int = 4, queues: tuple[str, ...] = (),
                 modules: tuple[str, ...] = ("tests.support.actors",),
                 shutdown_timeout_ms: int | None = None) -> None:
        self.env = env
        self.log_path = log_path
        self.processes = processes
        argv = [sys.executable, "-m", "dramatiq", "gabay.actors", *modules,
                "--processes", str(processes), "--threads", str(threads)]
        if queues:
            argv += ["--queues", *queues]
        if shutdown_timeout_ms is not None:
            argv += ["--worker-shutdown-timeout", str(shutdown_timeout_ms)]
        self.argv = argv
        self.popen: subprocess.Popen | None = None

    def start(self, client: redis.Redis, namespace: str, timeout: float = 30.0) -> WorkerProcess:
        """Start and wait until every worker process heartbeats in Redis."""
        started_ms = int(time.time() * 1000)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.popen = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        key = f"{namespace}:__heartbeats__"

        def booted() -> bool:
            assert self.popen is not None
            if self.popen.poll() is not None:
                raise AssertionError(f"workers exited with {self.popen.returncode}:\n{self.log()}")
            return client.zcount(key, started_ms, "+inf") >= self.processes

        wait_for(booted, timeout=timeout, message="worker processes to boot")
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def child_pids(self) -> list[int]:
        """PIDs of the worker processes under the dramatiq main process."""
        out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

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
        """SIGKILL the main process and all its worker processes at once (a lost host)."""
        os.killpg(self.pid, signal.SIGKILL)
        assert self.popen is not None
        self.popen.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
