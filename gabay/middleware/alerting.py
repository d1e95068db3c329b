"""Alerting: every worker process counts its actors' runs and evaluates the alert rules.

A thread evaluates every ``ALERT_INTERVAL`` seconds (:class:`gabay.alerts.service.AlertService`);
the incidents in Redis make one process send each alert, however many evaluate. A draining
process only publishes its counts: it is leaving. With no alert channel configured nothing runs
and nothing is counted.
"""

from __future__ import annotations

from typing import Any

from dramatiq import Broker, Message, Middleware, Worker

from gabay.alerts.service import AlertService
from gabay.cluster.intake import Intake
from gabay.cluster.periodic import Periodic


class Alerting(Middleware):
    """Counts runs per actor (success or exception) and runs the alert thread."""

    def __init__(self, service: AlertService, intake: Intake) -> None:
        self.service = service
        self.intake = intake
        self._passes: Periodic | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        if not self.service.enabled:
            return
        self._passes = Periodic("gabay-alerts", self.service.settings.alert_interval, self._tick)
        self._passes.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._passes is not None:
            self._passes.stop()
            self.service.flush()

    def after_process_message(self, broker: Broker, message: Message, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        if not self.service.enabled or self.intake.was_put_back(message):
            return
        self.service.runs.record(message.actor_name, exception is None)

    def _tick(self) -> None:
        self.service.tick(evaluate=not self.intake.draining.is_set())
