"""Stats: cluster-wide job counters in Redis for the status API (key layout in stats_store).

Two middleware because they must sit at two places of the stack:

- :class:`Stats` sits before Retries, so its after-hooks run after Retries decided: a failed
  attempt that will be retried is not counted, a final failure (dead-lettered) is, with its
  reason. Held-back messages (skipped) count as ``deferred`` (a cap or rate limit) or ``requeued``
  (a pause or a drain put them back).
- :class:`RunningJobs` sits after the gates (pause, caps, rate limits), so only messages that
  really started count as running. Each process keeps its entries in one hash whose TTL it
  refreshes from a thread: a killed process's entries vanish within ``HEARTBEAT_TIMEOUT``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from dramatiq import Broker, Message, Middleware, Worker

from gabay.middleware.stats_store import (
    REASON_MAX,
    Failure,
    QueueCounters,
    QueueStats,
    RunningJob,
    StatsWriter,
)
from gabay.settings import Settings

__all__ = ["Failure", "QueueCounters", "QueueStats", "RunningJob", "RunningJobs", "Stats"]

logger = logging.getLogger(__name__)


def _writer(broker: Broker) -> StatsWriter | None:
    settings = getattr(broker, "settings", None)
    if not isinstance(settings, Settings):
        return None
    return StatsWriter(broker.client, settings)  # type: ignore[attr-defined]


def describe_exception(exception: BaseException | None) -> str:
    if exception is None:
        return "failed"
    text = f"{type(exception).__name__}: {exception}" if str(exception) else type(exception).__name__
    return text[:REASON_MAX]


class Stats(Middleware):
    """Counts completed, final failures (with reasons), deferrals and put-backs per queue."""

    def __init__(self) -> None:
        self._writer: StatsWriter | None = None

    def _get_writer(self, broker: Broker) -> StatsWriter | None:
        if self._writer is None:
            self._writer = _writer(broker)
        return self._writer

    def after_process_message(self, broker: Broker, message: Message, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        if _was_put_back(broker, message):
            return  # cut off by a drain: it runs again, counted then
        if exception is None:
            self._count(broker, message, "completed")
        elif getattr(message, "failed", False):
            self._fail(broker, message, exception)

    def after_skip_message(self, broker: Broker, message: Message) -> None:
        if getattr(message, "failed", False):  # e.g. AgeLimit: dead-lettered without running
            self._fail(broker, message, getattr(message, "_exception", None))
        elif _was_put_back(broker, message):
            self._count(broker, message, "requeued")
        else:
            self._count(broker, message, "deferred")

    def _fail(self, broker: Broker, message: Message, exception: BaseException | None) -> None:
        self._count(broker, message, "failed")
        writer = self._get_writer(broker)
        if writer is None:
            return
        failure = Failure(queue=message.queue_name, actor=message.actor_name,
                          message_id=message.message_id, reason=describe_exception(exception),
                          at=time.time())
        try:
            writer.failure(failure)
        except redis.RedisError as exc:
            logger.warning("Could not record a failure of %s: %s", message.message_id, exc)

    def _count(self, broker: Broker, message: Message, field: str) -> None:
        writer = self._get_writer(broker)
        if writer is None:
            return
        try:
            writer.count(message.queue_name, field)
        except redis.RedisError as exc:
            logger.warning("Could not count %s on %s: %s", field, message.queue_name, exc)


def _was_put_back(broker: Broker, message: Message) -> bool:
    intake = getattr(broker, "intake", None)
    return intake is not None and intake.was_put_back(message)


class RunningJobs(Middleware):
    """The jobs this process runs right now, in a TTL'd hash refreshed from a thread."""

    def __init__(self) -> None:
        self._writer: StatsWriter | None = None
        self._worker_id = ""
        self._ttl_ms = 15_000
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._writer = _writer(broker)
        if self._writer is None:
            return
        self._worker_id = broker.broker_id  # type: ignore[attr-defined]
        self._ttl_ms = int(self._writer.keys.settings.heartbeat_timeout * 1000)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gabay-running", daemon=True)
        self._thread.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._writer is not None:
            self._safely(self._writer.gone, self._worker_id)

    def before_process_message(self, broker: Broker, message: Message) -> None:
        if self._writer is None:
            return
        job = RunningJob(queue=message.queue_name, actor=message.actor_name,
                         message_id=message.message_id, started_at=time.time())
        self._safely(self._writer.started, self._worker_id, _redis_id(message), job, self._ttl_ms)

    def after_process_message(self, broker: Broker, message: Message, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        self.after_skip_message(broker, message)

    def after_skip_message(self, broker: Broker, message: Message) -> None:
        if self._writer is not None:
            self._safely(self._writer.ended, self._worker_id, _redis_id(message))

    def _run(self) -> None:
        interval = max(self._ttl_ms / 3000, 0.2)
        while not self._stop.wait(interval):
            if self._writer is not None:
                self._safely(self._writer.refresh, self._worker_id, self._ttl_ms)

    @staticmethod
    def _safely(action: Any, *args: Any) -> None:
        try:
            action(*args)
        except redis.RedisError as exc:
            logger.warning("Could not update the running jobs: %s", exc)


def _redis_id(message: Message) -> str:
    return str(message.options.get("redis_message_id", message.message_id))
