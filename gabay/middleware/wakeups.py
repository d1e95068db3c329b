"""Wakeups: each worker process listens for its queues turning non-empty (gabay.cluster.wakeups)."""

from __future__ import annotations

from dramatiq import Broker, Middleware, Worker

from gabay.cluster.wakeups import WakeupListener


class Wakeups(Middleware):
    """Start the process's wake-up listener at boot, stop it at shutdown."""

    def __init__(self, listener: WakeupListener) -> None:
        self.listener = listener

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self.listener.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self.listener.stop()
