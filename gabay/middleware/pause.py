"""Pause: paused queues start no job in any worker process; their messages wait in Redis.

The flags live in Redis (:class:`PauseFlags`). Each worker process reads them once before its
consumers start (a process that starts while a queue is paused honours it), then at once when a
pause or resume is announced on the ``pause`` signal channel, and every ``interval`` seconds
from a thread (every ``QUIET_INTERVAL`` seconds while the process hears the signals). While a
queue is paused the process's consumer does not fetch from it at all (no fetch-and-defer storm
however long the queue); a message that was already prefetched when the pause came is put back
at the head of its queue when a worker thread reaches it, with its retry count untouched.
Delayed messages keep moving from ``<q>.DQ`` to ``<q>``.
"""

from __future__ import annotations

import logging

import redis
from dramatiq import Broker, Message, Middleware, Worker

from gabay.cluster.intake import Intake, PutBack
from gabay.cluster.pause_flags import PauseFlags, PauseState
from gabay.cluster.periodic import Periodic

logger = logging.getLogger(__name__)

#: Seconds between reads of the flags while a pause or resume is announced on the signal channel.
QUIET_INTERVAL = 5.0


class Pause(Middleware):
    """Keeps the process's view of the pause flags fresh and holds back paused starts."""

    def __init__(self, flags: PauseFlags, intake: Intake, interval: float = 0.5) -> None:
        self.flags = flags
        self.intake = intake
        self.interval = interval
        self._refresher: Periodic | None = None

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._refresh()
        self._refresher = Periodic("gabay-pause", self.interval, self._refresh,
                                   signal=self.intake.signal_event("pause"),
                                   heard=self.intake.wakeups_live, quiet_interval=QUIET_INTERVAL)
        self._refresher.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._refresher is not None:
            self._refresher.stop()

    def before_process_message(self, broker: Broker, message: Message) -> None:
        if self.intake.is_paused(message.queue_name):
            self.intake.put_back(message.queue_name, [message])
            raise PutBack(f"queue {message.queue_name} is paused")

    def _refresh(self) -> None:
        try:
            state = self.flags.state()
        except redis.RedisError as exc:
            logger.warning("Could not read the pause flags (keeping the last known): %s", exc)
            return
        if state != (self.intake.pause_state or PauseState()):
            logger.info("Pause flags changed: %s", describe(state))
        self.intake.pause_state = state


def describe(state: PauseState) -> str:
    if state.all_paused:
        text = "all queues paused"
        return text + (f" except {', '.join(sorted(state.resumed))}" if state.resumed else "")
    if state.paused:
        return "paused: " + ", ".join(sorted(state.paused))
    return "nothing paused"
