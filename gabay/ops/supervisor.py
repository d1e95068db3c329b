"""Runs ``dramatiq gabay.actors`` and restarts it with backoff when it dies unexpectedly.

Dramatiq's main process stops all its worker processes when one of them dies (exit code 1), so
something must restart the whole command; this is it. Signals are forwarded: SIGTERM/SIGINT drain
and stop, SIGHUP makes Dramatiq reload its workers.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import gabay
from gabay.settings import Settings

logger = logging.getLogger(__name__)

MAX_BACKOFF = 60.0
#: What ``--watch`` reloads on: any Python file under the watched directory, at any depth.
WATCH_PATTERN = "**/*.py"
STABLE_AFTER = 60.0


@dataclass
class WorkerCommand:
    """What to run: the dramatiq command line for these settings."""

    settings: Settings
    processes: int
    threads: int
    queues: tuple[str, ...]
    extra_modules: tuple[str, ...] = ()
    watch: bool = False

    def argv(self) -> list[str]:
        timeout_ms = int((self.settings.drain_timeout + 10) * 1000)
        argv = [
            sys.executable, "-m", "dramatiq", "gabay.actors", *self.extra_modules,
            "--processes", str(self.processes),
            "--threads", str(self.threads),
            "--worker-shutdown-timeout", str(timeout_ms),
            "--queues", *self.queues,
        ]
        if self.watch:  # watchdog matches a pattern against the whole path: "*.py" never matches
            argv += ["--watch", str(Path(gabay.__file__).parent), "--watch-include", WATCH_PATTERN]
        return argv

    def env(self) -> dict[str, str]:
        """This environment with this interpreter's directory first in PATH: Dramatiq's SIGHUP
        reload (``gabay restart``, ``--watch``) re-executes the ``python`` that PATH finds."""
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        env = {**os.environ, "PATH": path}
        if self.settings.worker_max_memory is not None:  # --max-memory reaches the worker processes
            env["WORKER_MAX_MEMORY"] = str(self.settings.worker_max_memory)
        return env


@dataclass
class Supervisor:
    """Keeps one dramatiq command running until told to stop."""

    command: WorkerCommand
    on_restart: list = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _child: subprocess.Popen | None = None

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._forward)
        backoff = 1.0
        while True:
            started = time.monotonic()
            self._child = subprocess.Popen(self.command.argv(), env=self.command.env())
            code = self._child.wait()
            if self._stopping.is_set():
                return 0 if code in (0, -signal.SIGTERM) else code
            if code in (2, 3, 4):  # import error, broker unreachable, pid file: restarting won't help
                logger.error("dramatiq exited with code %s; not restarting", code)
                return code
            if time.monotonic() - started > STABLE_AFTER:
                backoff = 1.0
            logger.warning("Workers exited unexpectedly (code %s); restarting in %.0f s", code, backoff)
            for callback in self.on_restart:
                callback()
            if self._stopping.wait(backoff):
                return 0
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGHUP:
            self._stopping.set()
        if self._child is not None and self._child.poll() is None:
            self._child.send_signal(signal.SIGTERM if signum == signal.SIGINT else signum)
