"""MonitorLine: the cluster's monitoring line, logged by one elected process per interval."""

from __future__ import annotations

import logging

import redis
from dramatiq import Broker, Middleware, Worker

from gabay.cluster.intake import Intake
from gabay.cluster.monitor import MonitorElection, log_status
from gabay.cluster.outage import Outage
from gabay.cluster.periodic import Periodic
from gabay.cluster.status_reader import StatusReader

logger = logging.getLogger(__name__)


class MonitorLine(Middleware):
    """Every ``tick`` seconds, try to win this interval's election; the winner logs the status.

    A draining process stands aside: it is leaving, and its count of the cluster would be wrong
    as the other processes leave too.
    """

    def __init__(self, reader: StatusReader, election: MonitorElection, intake: Intake,
                 tick: float = 0.5) -> None:
        self.reader = reader
        self.election = election
        self.intake = intake
        self.tick = tick
        self._passes: Periodic | None = None
        self.outage = Outage(logger, "The monitoring line")

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._passes = Periodic("gabay-monitor", self.tick, self._check)
        self._passes.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._passes is not None:
            self._passes.stop()

    def _check(self) -> None:
        if self.intake.draining.is_set():
            return
        try:
            if self.election.elected():
                log_status(self.reader.read())
            self.outage.worked()
        except redis.RedisError as exc:
            self.outage.failed(exc)
