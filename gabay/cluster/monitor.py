"""The monitoring line: once per ``MONITOR_INTERVAL``, one line per worker type, for the cluster.

Every worker process runs the check (:class:`gabay.middleware.monitoring.MonitorLine`), but only
one process per interval wins the election and logs, so the log shows the cluster's numbers once,
not once per process::

    Question Generation - Workers: 3, Active: 2, Waiting: 5, Completed: 143
    Form Response - Active: 1, Waiting: 3, Completed: 87, Failed: 0
"""

from __future__ import annotations

import logging
import os
import socket
import time

import redis

from gabay.cluster.status import ClusterStatus
from gabay.settings import Settings

logger = logging.getLogger("gabay.monitor")  # a stable name for log filters


def monitor_lines(status: ClusterStatus) -> list[str]:
    """The seed's monitoring lines for this status."""
    if not status.redis_reachable:
        return [f"Cluster status unavailable: {'; '.join(status.reasons)}"]
    questions, feedback = status.queues, status.form_response_worker
    form_line = (f"Form Response - Active: {feedback.active}, Waiting: {feedback.waiting}, "
                 f"Completed: {feedback.completed}, Failed: {feedback.failed}")
    return [
        f"Question Generation - Workers: {status.workers.worker_count}, Active: {questions.active}, "
        f"Waiting: {questions.waiting}, Completed: {questions.completed}",
        form_line if feedback.enabled else form_line + " (disabled)",
    ]


def log_status(status: ClusterStatus) -> None:
    """Log the monitoring lines, then a warning with the reasons when the cluster is unhealthy."""
    for line in monitor_lines(status):
        logger.info("%s", line)
    if status.redis_reachable and not status.healthy:
        logger.warning("Cluster unhealthy: %s", "; ".join(status.reasons))


class MonitorElection:
    """One winner per interval across the cluster: ``SET NX PX`` on the interval's number.

    Intervals are numbered by the Redis server's clock, so hosts with skewed clocks still agree;
    each process tries once per interval, and asks Redis nothing until the next interval begins
    (one ``TIME`` per interval, not one per tick).
    """

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.keys = settings.keys
        self.interval_ms = max(int(settings.monitor_interval * 1000), 1)
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        self._last_slot: int | None = None
        self._quiet_until = 0.0  # time.monotonic() before which this interval is decided

    def elected(self) -> bool:
        """True for exactly one caller in the cluster per interval."""
        if time.monotonic() < self._quiet_until:
            return False
        seconds, micros = self.client.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        slot = now_ms // self.interval_ms
        self._quiet_until = time.monotonic() + ((slot + 1) * self.interval_ms - now_ms) / 1000
        if slot == self._last_slot:
            return False
        self._last_slot = slot
        key = self.keys.monitor_slot(slot)
        return bool(self.client.set(key, self.identity, nx=True, px=2 * self.interval_ms))
