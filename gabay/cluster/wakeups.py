"""Idle consumers sleep until a queue turns non-empty, instead of polling Redis every second.

Every push that can turn a queue from empty to non-empty tells the queue's wake channel
(``Keys.wake``): gabay's enqueue (its own copy of Dramatiq's enqueue command), the push of an
urgent message to the head, the due set's promotion, a put-back, a schedule firing and the
recovery of a dead worker's messages. One :class:`WakeupListener` thread per worker process
hears every wake channel (one ``PSUBSCRIBE``; a subscribed connection costs Redis no command
while nothing is published) and sets the nudge events of that queue's consumers
(:meth:`gabay.cluster.intake.Intake.nudge`). The same connection hears the signal channels
(``Keys.signal``) on which a pause, a resume or a restart request is announced: the processes
read those flags at once, and poll them only every few seconds while they hear.

While the listener is subscribed (``Intake.wakeups_live``) a consumer that holds no message
waits up to ``IDLE_FETCH_INTERVAL`` seconds between fetches; a consumer with messages in flight,
or any consumer while the subscription is down, keeps Dramatiq's short polling. A push that is
published while the listener reconnects is not lost: on every (re)subscribe each consumer fetches
once, and a producer that does not publish (plain Dramatiq) is still fetched within
``IDLE_FETCH_INTERVAL``.
"""

from __future__ import annotations

import logging
import threading

import redis

from gabay.cluster.intake import Intake
from gabay.cluster.outage import Outage
from gabay.keys import Keys

logger = logging.getLogger(__name__)

#: How long one wait for a published wake-up lasts before the thread checks that it may go on.
LISTEN_SLICE = 1.0
#: Pause before subscribing again after Redis failed, growing to RECONNECT_MAX (seconds).
RECONNECT_AFTER = 0.2
RECONNECT_MAX = 2.0


class WakeupListener:
    """Hears the queues' wake channels for one worker process (see the module docstring)."""

    def __init__(self, client: redis.Redis, keys: Keys, intake: Intake) -> None:
        self.client = client
        self.keys = keys
        self.intake = intake
        self.prefix = keys.wake("")
        self.signal_prefix = keys.signal("")
        self.outage = Outage(logger, "Listening for queue wake-ups")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gabay-wakeups", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        self.intake.wakeups_live.clear()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen()
                return
            except (redis.RedisError, OSError) as exc:
                self.intake.wakeups_live.clear()  # consumers poll again until we hear again
                self.outage.failed(exc)
                failures += 1
                self._stop.wait(min(RECONNECT_AFTER * 2 ** min(failures - 1, 4), RECONNECT_MAX))

    def _listen(self) -> None:
        pubsub = self.client.pubsub()
        try:
            pubsub.psubscribe(self.keys.wake_pattern, self.keys.signal_pattern)
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=LISTEN_SLICE)
                if message is None:
                    continue
                if message["type"] == "psubscribe":
                    if message["data"] == 2:  # both patterns are heard now
                        self.outage.worked()
                        self.intake.wakeups_live.set()
                        self.intake.nudge()  # whatever was published while we did not listen
                        self.intake.signal()
                elif message["type"] == "pmessage":
                    channel = message["channel"]
                    name = channel.decode() if isinstance(channel, bytes) else str(channel)
                    if name.startswith(self.prefix):
                        self.intake.nudge(name.removeprefix(self.prefix))
                    elif name.startswith(self.signal_prefix):
                        self.intake.signal(name.removeprefix(self.signal_prefix))
        finally:
            self.intake.wakeups_live.clear()
            pubsub.close()
