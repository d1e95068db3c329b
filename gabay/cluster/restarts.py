"""Cluster-wide restarts: a generation counter in Redis that every worker process watches.

``WorkerManager.restart()`` bumps the generation (:func:`request_restart`). Each worker process
reads it twice a second (:class:`gabay.middleware.restarts.RestartOnRequest`); when it changes,
exactly one process per dramatiq main process (deduplicated with ``SET NX`` on host + main pid +
generation) sends SIGHUP to its main process, which drains its workers as for SIGTERM and
re-executes itself.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
from pathlib import Path

import redis

from gabay.keys import Keys

logger = logging.getLogger(__name__)


def request_restart(client: redis.Redis, keys: Keys) -> int:
    """Ask every worker process to drain and restart; returns the new generation."""
    with client.pipeline(transaction=True) as pipe:
        pipe.incr(keys.restart_generation)
        pipe.incr(keys.restarts)
        pipe.publish(keys.signal("restart"), "1")  # every process reads the generation when told
        generation, _, _ = pipe.execute()
    return int(generation)


def count_restart(client: redis.Redis, keys: Keys) -> None:
    """Count an automatic restart (the supervisor restarted dramatiq after a crash)."""
    client.incr(keys.restarts)


def restart_count(client: redis.Redis, keys: Keys) -> int:
    return int(client.get(keys.restarts) or 0)


def reload_problem() -> str | None:
    """Why Dramatiq's SIGHUP reload would start another interpreter, or None.

    Started as ``python -m dramatiq``, the main process reloads by executing ``python`` found in
    PATH; outside an activated virtualenv that is not this interpreter and the reload fails.
    """
    if not sys.argv[0].endswith(os.path.join("dramatiq", "__main__.py")):
        return None  # started by the dramatiq script: the reload re-executes that script
    found = shutil.which("python")
    if found and Path(found).parent == Path(sys.executable).parent:
        return None
    return (f"Restarts (SIGHUP) would execute {found or 'no python'} instead of {sys.executable}: "
            f"put {Path(sys.executable).parent} first in PATH, or start the `dramatiq` script.")


class RestartWatcher:
    """Turns a new restart generation into one SIGHUP to this process's dramatiq main process."""

    def __init__(self, client: redis.Redis, keys: Keys, *, can_signal: bool) -> None:
        self.client = client
        self.keys = keys
        self.can_signal = can_signal
        self.parent = os.getppid()  # the dramatiq main process (may be PID 1 in a container)
        self.generation = self._read()

    def _read(self) -> int:
        return int(self.client.get(self.keys.restart_generation) or 0)

    def check(self) -> bool:
        """Return True when this process sent SIGHUP for a new generation."""
        generation = self._read()
        if generation <= self.generation:
            self.generation = min(self.generation, generation)  # the counter was reset
            return False
        self.generation = generation
        if not self.can_signal:
            logger.warning("Restart %d requested, but this process was not started by dramatiq.", generation)
            return False
        parent = os.getppid()
        if parent != self.parent:  # orphaned: the dramatiq main process is gone
            return False
        claim = self.keys.restart_claim(socket.gethostname(), parent, generation)
        if not self.client.set(claim, str(os.getpid()), nx=True, ex=3600):
            return False
        logger.info("Restart %d requested: reloading the worker processes (SIGHUP to %d).",
                    generation, parent)
        os.kill(parent, signal.SIGHUP)
        return True
