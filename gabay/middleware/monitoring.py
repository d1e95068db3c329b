"""MonitorLine: the cluster's monitoring line, logged by one elected process per interval."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import redis
from dramatiq import Broker, Middleware, Worker

from gabay.cluster.intake import Intake
from gabay.cluster.monitor import MonitorElection, log_status
from gabay.cluster.outage import Outage
from gabay.cluster.periodic import Periodic
from gabay.cluster.status_reader import StatusReader
from gabay.errors import GabayError

logger = logging.getLogger(__name__)
monitor_logger = logging.getLogger("gabay.monitor")

#: One more line of the monitoring line (schedules, alerts): None when it has nothing to say.
Section = Callable[[], str | None]


class MonitorLine(Middleware):
    """Every ``tick`` seconds, try to win this interval's election; the winner logs the status.

    A draining process stands aside: it is leaving, and its count of the cluster would be wrong
    as the other processes leave too. ``sections`` add lines after the seed's two (the schedules'
    and the alerts' state); one that cannot be read says so in its line instead of hiding the rest.
    """

    def __init__(self, reader: StatusReader, election: MonitorElection, intake: Intake,
                 tick: float = 0.5, sections: Sequence[tuple[str, Section]] = ()) -> None:
        self.reader = reader
        self.sections = tuple(sections)
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
                for line in self._section_lines():
                    monitor_logger.info("%s", line)
            self.outage.worked()
        except redis.RedisError as exc:
            self.outage.failed(exc)

    def _section_lines(self) -> list[str]:
        lines = []
        for title, section in self.sections:
            try:
                line = section()
            except (redis.RedisError, GabayError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                line = f"{title} - unavailable: {reason}"
            if line:
                lines.append(line)
        return lines
