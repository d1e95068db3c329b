"""Ownership: a job stops before its next side effect once its process no longer owns it.

A process frozen (SIGSTOP, a paused VM, a swap storm) or cut off from Redis for longer than
``HEARTBEAT_TIMEOUT`` is presumed dead: a live process's recovery pass puts its messages back in
their queues, where another process may already run them, and gives its cap slots back. When the
frozen process resumes, its threads carry on from where they stopped; unchecked, the job would pay
for its LLM calls a second time, overwrite the job record, perhaps send the email twice, and run
beside the new holder of its cap slot.

:meth:`Ownership.check` is what the actors call before each side effect they guard (an LLM call,
the email send, the next stage's enqueue). It asks Redis:

1. Is the delivery still in this process's acks set? If not, another process has it: the job
   stops with :class:`~gabay.cluster.intake.OwnershipLost` and its ack is skipped (Dramatiq's ack
   would delete the message data that the other process needs).
2. For a capped actor: is its lease still held? If it was lost but a slot is free, the slot is
   taken again and the job goes on; if the cap is full, the delivery goes back to its queue and
   the job stops.

When Redis cannot answer, it fails closed: the delivery goes back (or is kept until Redis
answers) and the job stops. Work done before a stop is reused by the next run (the feedback
already written, the sent record of the email), so a stop costs at most the step in progress.

A message is also checked before it starts, but only when this process may have been presumed
dead: its last heartbeat is older than a third of ``HEARTBEAT_TIMEOUT`` (the messages a frozen
process had prefetched were put back too). In normal running a start costs no round trip.
Outside a worker (a test calling a pipeline directly, the CLI) ``check`` does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq
import redis
from dramatiq import Broker, Middleware

from gabay.cluster.dead_workers import DeadWorkers
from gabay.cluster.intake import Intake, OwnershipLost
from gabay.keys import Keys
from gabay.limits.leases import Leases
from gabay.middleware.concurrency import ConcurrencyCaps

logger = logging.getLogger(__name__)


class Ownership(Middleware):
    """Checks that this process still owns the message it runs (see the module docstring)."""

    def __init__(self, client: redis.Redis, keys: Keys, intake: Intake, caps: ConcurrencyCaps,
                 leases: Leases, dead_workers: DeadWorkers, heartbeat_timeout: float,
                 cancels: Callable[[dramatiq.Message], None] | None = None) -> None:
        self.client = client
        self.keys = keys
        self.intake = intake
        self.caps = caps
        self.leases = leases
        self.dead_workers = dead_workers
        self.suspect_after = heartbeat_timeout / 3
        #: Also asked by ``check``: raises JobCancelled for a cancelled job (gabay.middleware.cancellation)
        self.cancels = cancels
        self._running = threading.local()  # .message: the job this worker thread runs

    def before_process_message(self, broker: Broker, message: dramatiq.Message) -> None:
        last_beat = self.dead_workers.last_beat
        if last_beat is not None and time.monotonic() - last_beat > self.suspect_after:
            self.verify(message)
        self._running.message = message

    def after_process_message(self, broker: Broker, message: dramatiq.Message, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        self._running.message = None

    def after_skip_message(self, broker: Broker, message: dramatiq.Message) -> None:
        self._running.message = None

    def check(self) -> None:
        """Raise OwnershipLost unless this process still owns the job running in this thread."""
        message = getattr(self._running, "message", None)
        if message is None or "redis_message_id" not in message.options:
            return
        self.verify(message)
        if self.cancels is not None:
            self.cancels(message)

    def verify(self, message: dramatiq.Message) -> None:
        try:
            owned = self.client.sismember(self.keys.acks(self.intake.worker_id, message.queue_name),
                                          message.options["redis_message_id"])
            slot = self.caps.slot_of(message)
            if owned and slot is not None and not self.leases.reclaim(message.actor_name, *slot):
                self.intake.put_back_or_keep(message.queue_name, [message])
                raise _stop(f"message {message.message_id} lost its concurrency slot while this "
                            "process was presumed dead; it is back in its queue")
        except redis.RedisError as exc:
            self.intake.put_back_or_keep(message.queue_name, [message])
            raise _stop(f"could not check that this process still owns message "
                        f"{message.message_id} ({type(exc).__name__}); it goes back to its queue") from exc
        if not owned:
            self.intake.disown(message)
            raise _stop(f"message {message.message_id} was given to another process while this one "
                        "was presumed dead; stopping it here")


def _stop(reason: str) -> OwnershipLost:
    """The error that stops the job, logged once here (Dramatiq logs only "skipped")."""
    logger.warning("%s.", reason[0].upper() + reason[1:])
    return OwnershipLost(reason)
