"""Cluster control inside every worker process: restarts, the monitoring line, start marks.

- **Restart**: ``WorkerManager.restart()`` bumps a generation counter in Redis. A light thread in
  every worker process reads it twice a second; when it changes, exactly one process per dramatiq
  main process (deduplicated with ``SET NX`` on host + main pid + generation) sends SIGHUP to its
  main process, which drains its workers as for SIGTERM and re-executes itself.
- **Monitoring**: the same thread logs the cluster's monitoring line once per ``MONITOR_INTERVAL``
  for the whole cluster (see :mod:`gabay.cluster.monitor`).
- **Last start** per queue, for the stuck-queue health rule: written at most once a second per
  queue and process. This middleware is last in the stack, so a message held back by a pause, a
  cap or a rate limit is not a start.
- **ENABLE_FORM_RESPONSE_WORKER=false**: the process does not consume ``form-response-processing``
  (its messages wait there), even when started as plain ``dramatiq gabay.actors``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import redis
from dramatiq import Broker, Message, Middleware, Worker
from dramatiq.common import q_name

from gabay.cluster.periodic import Periodic
from gabay.queues import FORM_RESPONSE_QUEUES
from gabay.settings import Settings

logger = logging.getLogger(__name__)

MARK_EVERY = 1.0
#: A queue name nothing is declared on: a whitelist that consumes nothing.
NO_QUEUE = "gabay-no-queue"


def restart_generation_key(settings: Settings) -> str:
    return settings.keys.restart_generation


def restarts_key(settings: Settings) -> str:
    """Counter of restarts: requested ones and automatic ones after a crash (gabay workers)."""
    return settings.keys.restarts


def last_start_key(settings: Settings, queue: str) -> str:
    return settings.keys.last_start(queue)


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


def _settings_of(broker: Broker) -> Settings | None:
    settings = getattr(broker, "settings", None)
    return settings if isinstance(settings, Settings) else None


class ClusterControl(Middleware):
    """Runs in every worker process; see the module docstring."""

    def __init__(self, tick: float = 0.5) -> None:
        self.tick = tick
        self.under_cli = False
        self._watcher: RestartWatcher | None = None
        self._marked: dict[str, float] = {}
        self._passes: Periodic | None = None

    def after_process_boot(self, broker: Broker) -> None:
        # Emitted only by the dramatiq CLI: our parent is a dramatiq main process we may SIGHUP.
        # The generation is read this early so that a restart asked for while the rest of the
        # process boots is not missed.
        self.under_cli = True
        problem = reload_problem()
        if problem:
            logger.warning("%s", problem)
        settings = _settings_of(broker)
        if settings is not None:
            self._watcher = RestartWatcher(broker.client, settings, can_signal=True)  # type: ignore[attr-defined]

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        settings = _settings_of(broker)
        if settings is None or settings.enable_form_response_worker:
            return
        wanted = set(worker.consumer_whitelist or {q_name(q) for q in broker.get_declared_queues()})
        kept = wanted - set(FORM_RESPONSE_QUEUES)
        worker.consumer_whitelist = kept or {NO_QUEUE}
        logger.info("ENABLE_FORM_RESPONSE_WORKER is false: not consuming %s.",
                    ", ".join(FORM_RESPONSE_QUEUES))

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        settings = _settings_of(broker)
        if settings is None:
            return
        client: redis.Redis = broker.client  # type: ignore[attr-defined]
        watcher = self._watcher or RestartWatcher(client, settings, can_signal=self.under_cli)
        self._passes = Periodic("gabay-control", self.tick, ControlPass(client, settings, watcher))
        self._passes.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._passes is not None:
            self._passes.stop()

    def before_process_message(self, broker: Broker, message: Message) -> None:
        settings = _settings_of(broker)
        now = time.time()
        if settings is None or now - self._marked.get(message.queue_name, 0.0) < MARK_EVERY:
            return
        self._marked[message.queue_name] = now
        try:
            broker.client.set(last_start_key(settings, message.queue_name), repr(now))  # type: ignore[attr-defined]
        except redis.RedisError as exc:
            logger.debug("Could not mark the start on %s: %s", message.queue_name, exc)



class ControlPass:
    """One pass of the control thread: restart requests, then the monitoring line if elected."""

    def __init__(self, client: redis.Redis, settings: Settings, watcher: RestartWatcher) -> None:
        from gabay.cluster.monitor import MonitorElection
        from gabay.ops.manager import WorkerManager  # imported late: it imports the other middleware

        self.watcher = watcher
        self.manager = WorkerManager(settings, client)
        self.election = MonitorElection(client, settings)
        self.failing = False

    def __call__(self) -> None:
        from gabay.cluster.monitor import log_status

        try:
            self.watcher.check()
            if self.election.elected():
                log_status(self.manager.get_status())
            self.failing = False
        except redis.RedisError as exc:
            if not self.failing:
                logger.warning("Cluster control cannot reach Redis: %s", type(exc).__name__)
            self.failing = True
        except Exception:  # the thread must survive anything; a bug is logged, not fatal
            logger.exception("Cluster control pass failed.")


class RestartWatcher:
    """Turns a new restart generation into one SIGHUP to this process's dramatiq main process."""

    def __init__(self, client: redis.Redis, settings: Settings, *, can_signal: bool) -> None:
        self.client = client
        self.settings = settings
        self.can_signal = can_signal
        self.parent = os.getppid()  # the dramatiq main process (may be PID 1 in a container)
        self.generation = self._read()

    def _read(self) -> int:
        return int(self.client.get(restart_generation_key(self.settings)) or 0)

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
        claim = self.settings.keys.restart_claim(socket.gethostname(), parent, generation)
        if not self.client.set(claim, str(os.getpid()), nx=True, ex=3600):
            return False
        logger.info("Restart %d requested: reloading the worker processes (SIGHUP to %d).",
                    generation, parent)
        os.kill(parent, signal.SIGHUP)
        return True
