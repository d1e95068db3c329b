"""Stats: cluster-wide job counters in Redis for the status API (key layout in stats_store).

Two middleware because they must sit at two places of the stack:

- :class:`Stats` sits before Retries, so its after-hooks run after Retries decided: a failed
  attempt that will be retried is not counted, a final failure (dead-lettered) is, with its
  reason. Held-back messages (skipped) count as ``deferred`` (a cap or rate limit) or ``requeued``
  (a pause or a drain put them back).
- :class:`RunningJobs` sits after the gates (pause, caps, rate limits), so only messages that
  really started count as running. Each process keeps its entries in one hash whose TTL it
  refreshes from a thread: a killed process's entries vanish within ``HEARTBEAT_TIMEOUT``.

Both only record in the process's :class:`~gabay.cluster.stats_buffer.StatsBuffer` (no Redis
round trip per message); its thread publishes every ``FLUSH_EVERY`` seconds and at shutdown.
"""

from __future__ import annotations

import time
from typing import Any

from dramatiq import Broker, Message, Middleware, Worker

from gabay.cluster.intake import Intake
from gabay.cluster.stats import REASON_MAX, Failure
from gabay.cluster.stats_buffer import StatsBuffer


def describe_exception(exception: BaseException | None) -> str:
    if exception is None:
        return "failed"
    text = f"{type(exception).__name__}: {exception}" if str(exception) else type(exception).__name__
    return text[:REASON_MAX]


class _Buffered(Middleware):
    """A middleware that records into the process's StatsBuffer (started with the worker)."""

    def __init__(self, buffer: StatsBuffer) -> None:
        self.buffer = buffer

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self.buffer.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self.buffer.stop()


class Stats(_Buffered):
    """Counts completed, final failures (with reasons), deferrals and put-backs per queue."""

    def __init__(self, buffer: StatsBuffer, intake: Intake) -> None:
        super().__init__(buffer)
        self.intake = intake

    def flush(self) -> bool:
        """Publish what is pending now (the buffer's thread does so every ``FLUSH_EVERY``)."""
        return self.buffer.flush()

    def after_process_message(self, broker: Broker, message: Message, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        if self.intake.was_put_back(message):
            return  # cut off by a drain: it runs again, counted then
        if exception is None:
            self.buffer.count(message.queue_name, "completed")
        elif getattr(message, "failed", False):
            self._fail(message, exception)
        else:  # Retries scheduled another attempt
            self.buffer.count(message.queue_name, "retried")

    def after_skip_message(self, broker: Broker, message: Message) -> None:
        if getattr(message, "failed", False):  # e.g. AgeLimit: dead-lettered without running
            self._fail(message, getattr(message, "_exception", None))
        elif self.intake.was_put_back(message) and not self.intake.was_deferred(message):
            self.buffer.count(message.queue_name, "requeued")
        else:
            self.buffer.count(message.queue_name, "deferred")

    def _fail(self, message: Message, exception: BaseException | None) -> None:
        self.buffer.fail(Failure(queue=message.queue_name, actor=message.actor_name,
                                 message_id=message.message_id,
                                 reason=describe_exception(exception), at=time.time()))


class RunningJobs(_Buffered):
    """The jobs this process runs right now (published with the counters, TTL'd per process)."""

    def before_process_message(self, broker: Broker, message: Message) -> None:
        self.buffer.started(_redis_id(message), message.queue_name, message.actor_name,
                            message.message_id)
        if not message.options.get("retries"):  # wait: from send to the start of the first run
            waited = max(0.0, time.time() - message.message_timestamp / 1000)
            self.buffer.observe("job_wait_seconds", (message.queue_name, message.actor_name), waited)

    def after_process_message(self, broker: Broker, message: Message, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        started = self.buffer.ended(_redis_id(message))
        if started is not None:
            self.buffer.observe("job_duration_seconds", (message.queue_name, message.actor_name),
                                max(0.0, time.time() - started))

    def after_skip_message(self, broker: Broker, message: Message) -> None:
        self.buffer.ended(_redis_id(message))


def _redis_id(message: Message) -> str:
    return str(message.options.get("redis_message_id", message.message_id))
