"""RestartOnRequest: drain and restart this process when an operator asks the cluster to restart.

A thread reads the restart generation at once when a request is announced on the ``restart``
signal channel, and twice a second otherwise (every ``QUIET_INTERVAL`` seconds while the process
hears the signals; see :mod:`gabay.cluster.restarts` and :mod:`gabay.cluster.wakeups`). Under
the dramatiq CLI the generation is read as early as ``after_process_boot``, so a restart asked
for while the rest of the process boots is not missed.
"""

from __future__ import annotations

import logging

import redis
from dramatiq import Broker, Middleware, Worker

from gabay.cluster.intake import Intake
from gabay.cluster.outage import Outage
from gabay.cluster.periodic import Periodic
from gabay.cluster.restarts import RestartWatcher, reload_problem
from gabay.keys import Keys

logger = logging.getLogger(__name__)

#: Seconds between reads of the restart generation while requests are announced on the channel.
QUIET_INTERVAL = 5.0


class RestartOnRequest(Middleware):
    """Sends SIGHUP to this process's dramatiq main process for each new restart generation."""

    def __init__(self, client: redis.Redis, keys: Keys, tick: float = 0.5,
                 intake: Intake | None = None) -> None:
        self.client = client
        self.keys = keys
        self.intake = intake
        self.tick = tick
        self.under_cli = False
        self._watcher: RestartWatcher | None = None
        self._passes: Periodic | None = None
        self.outage = Outage(logger, "Reading the restart generation")

    def after_process_boot(self, broker: Broker) -> None:
        # Emitted only by the dramatiq CLI: our parent is a dramatiq main process we may SIGHUP.
        self.under_cli = True
        problem = reload_problem()
        if problem:
            logger.warning("%s", problem)
        self._watcher = RestartWatcher(self.client, self.keys, can_signal=True)

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        watcher = self._watcher or RestartWatcher(self.client, self.keys, can_signal=self.under_cli)
        self._passes = Periodic(
            "gabay-restarts", self.tick, lambda: self._check(watcher),
            signal=self.intake.signal_event("restart") if self.intake is not None else None,
            heard=self.intake.wakeups_live if self.intake is not None else None,
            quiet_interval=QUIET_INTERVAL)
        self._passes.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._passes is not None:
            self._passes.stop()

    def _check(self, watcher: RestartWatcher) -> None:
        try:
            watcher.check()
            self.outage.worked()
        except redis.RedisError as exc:
            self.outage.failed(exc)
