"""MemoryLimit: a worker process that grows past ``WORKER_MAX_MEMORY`` drains and is replaced.

PM2's ``max_memory_restart`` for Dramatiq. Each worker process reads its own resident memory
(``VmRSS`` in ``/proc/self/status``) every ``WORKER_MEMORY_CHECK_INTERVAL`` seconds. Past the
limit it sends SIGHUP to its dramatiq main process, the same reload ``gabay restart`` uses: the
main process forwards it once to each of its worker processes, each **drains** (fetched messages
go back at once, running jobs finish or go back unchanged at ``DRAIN_TIMEOUT``), and Dramatiq
re-executes itself with fresh worker processes. No job is lost, none uses a retry.

Why in the worker and not in the supervisor: the check then works however the workers are
started (``gabay workers``, plain ``dramatiq gabay.actors`` under systemd, PM2 or Kubernetes),
needs no scan of another process's children, and the process that knows it is big is the one
that asks. Dramatiq's main process cannot replace one of its worker processes alone (when one
exits it stops all), so a recycle reloads the whole command: with ``-p 1`` (``--autoscale``, one
process per pod) exactly the big process.

Only one process of a command asks per reload: a ``SET NX`` claim per (host, main pid) that lasts
``DRAIN_TIMEOUT`` + 15 s, so two processes over the limit at once do not send two SIGHUPs (a
repeat more than a second later would stop a draining process at once). Each recycle is logged,
counted in ``memory-recycles`` (``gabay status``: ``memory_recycles``) and in the restarts.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import redis
from dramatiq import Broker, Middleware, Worker

from gabay.cluster.outage import Outage
from gabay.cluster.periodic import Periodic
from gabay.keys import Keys

logger = logging.getLogger(__name__)

MB = 1024 * 1024


def read_rss(status_file: Path = Path("/proc/self/status")) -> int | None:
    """Resident set size in bytes from ``VmRSS`` (None where there is no /proc)."""
    try:
        for line in status_file.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024  # the kernel writes kB
    except OSError:
        return None
    return None


class MemoryLimit(Middleware):
    """Asks this process's dramatiq command to reload once this process's RSS passes ``limit``."""

    def __init__(self, client: redis.Redis, keys: Keys, limit: int | None, *, interval: float,
                 drain_timeout: float, rss: Callable[[], int | None] = read_rss,
                 parent: Callable[[], int] = os.getppid,
                 kill: Callable[[int, int], None] = os.kill) -> None:
        self.client = client
        self.keys = keys
        self.limit = limit
        self.interval = interval
        self.claim_seconds = int(drain_timeout + 15)
        self.rss = rss
        self.parent = parent
        self.kill = kill
        self.under_cli = False
        self.asked = False
        self._passes: Periodic | None = None
        self._warned = False
        self.outage = Outage(logger, "Recording a memory recycle")

    def after_process_boot(self, broker: Broker) -> None:
        # Emitted only by the dramatiq CLI: our parent is a dramatiq main process we may SIGHUP.
        self.under_cli = True

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        if self.limit is None:
            return
        self.asked = False
        self._passes = Periodic("gabay-memory", self.interval, self.check)
        self._passes.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._passes is not None:
            self._passes.stop()

    def check(self) -> None:
        rss = self.rss()
        if self.limit is None or rss is None or rss <= self.limit or self.asked:
            return
        if not self.under_cli:
            if not self._warned:
                logger.warning("Worker process %d uses %d MB, over WORKER_MAX_MEMORY (%d MB), but "
                               "it was not started by the dramatiq command: not recycled",
                               os.getpid(), rss // MB, self.limit // MB)
                self._warned = True
            return
        main_pid = self.parent()
        try:
            claimed = self.client.set(self.keys.memory_recycle_claim(socket.gethostname(), main_pid),
                                      os.getpid(), nx=True, ex=self.claim_seconds)
            if claimed:
                with self.client.pipeline(transaction=True) as pipe:
                    pipe.incr(self.keys.memory_recycles)
                    pipe.incr(self.keys.restarts)
                    pipe.execute()
            self.outage.worked()
        except redis.RedisError as exc:
            self.outage.failed(exc)
            return  # tried again at the next check
        if not claimed:
            return  # another process of this command asked already; its reload replaces us too
        self.asked = True
        logger.warning("Worker process %d uses %d MB, over WORKER_MAX_MEMORY (%d MB): draining and "
                       "replacing the worker processes of dramatiq %d", os.getpid(), rss // MB,
                       self.limit // MB, main_pid)
        self.kill(main_pid, signal.SIGHUP)
