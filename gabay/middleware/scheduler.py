"""Scheduling: every worker process runs the scheduler; the one leader of the cluster fires.

The schedules are read when the broker is built (a bad schedules file stops the worker with its
ConfigError line). The threads start at ``after_worker_boot``, when every actor is declared, so
each schedule's actor resolves to its queue; they stop, giving the lease up, at
``before_worker_shutdown``, and a draining process stands aside at once. The hooks on messages
record how a scheduled run went (running, succeeded, failed, deferred) in its schedule's record,
for ``gabay schedules`` and the dashboard; only messages fired by a schedule pay for it.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import redis
from dramatiq import Broker, Middleware, Worker
from dramatiq.errors import ActorNotFound

from gabay.cluster.intake import Intake
from gabay.schedules.config import Schedule, load_schedules
from gabay.schedules.firing import Firing
from gabay.schedules.scheduler import Scheduler
from gabay.settings import Settings

logger = logging.getLogger(__name__)


class Scheduling(Middleware):
    """Runs a :class:`~gabay.schedules.scheduler.Scheduler` in this worker process."""

    def __init__(self, schedules: list[Schedule], client: redis.Redis, settings: Settings,
                 intake: Intake) -> None:
        self.schedules = schedules
        self.client = client
        self.settings = settings
        self.intake = intake
        self.firing = Firing(client, settings.keys)
        self.scheduler: Scheduler | None = None

    @classmethod
    def from_settings(cls, settings: Settings, client: redis.Redis, intake: Intake) -> Scheduling:
        """Read the schedules now: a bad file raises ConfigError while the worker starts."""
        return cls(load_schedules(settings), client, settings, intake)

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        queues = {}
        for schedule in self.schedules:
            try:
                queues[schedule.actor] = broker.get_actor(schedule.actor).queue_name
            except ActorNotFound:
                logger.error("Schedule %r names actor %r, which this worker does not declare; its runs "
                             "are skipped while this process leads.", schedule.name, schedule.actor)
        identity = f"{socket.gethostname()}:{os.getpid()}:{self.intake.worker_id}"
        self.scheduler = Scheduler(
            self.schedules, self.client, self.settings.keys, identity=identity,
            lease_seconds=self.settings.schedule_lease_seconds,
            tick_seconds=self.settings.schedule_tick_seconds,
            stand_aside=self.intake.draining.is_set)
        self.scheduler.start(queues)

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()

    # -- the outcome of scheduled runs ------------------------------------------------------------

    def before_process_message(self, broker: Broker, message: Any) -> None:
        self._record(message, "running")

    def after_process_message(self, broker: Broker, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        if exception is None:
            self._record(message, "succeeded")
        else:
            self._record(message, "failed", f"{type(exception).__name__}: {exception}"[:500])

    def after_skip_message(self, broker: Broker, message: Any) -> None:
        self._record(message, "deferred")

    def _record(self, message: Any, outcome: str, error: str = "") -> None:
        name = message.options.get("schedule")
        if not name:
            return
        try:
            seconds, micros = self.client.time()
            self.firing.record_outcome(str(name), message.message_id, outcome,
                                       int(seconds) * 1000 + int(micros) // 1000, error,
                                       int(message.options.get("retries", 0)) + 1)
        except redis.RedisError as exc:  # a record only: never hold the run back for it
            logger.debug("Could not record the %s of scheduled message %s (%s).", outcome,
                         message.message_id, exc)
