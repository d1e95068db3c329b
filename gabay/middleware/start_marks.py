"""StartMarks: when each queue last started a job, for the stuck-queue health rule.

Written at most once a second per queue and process. This middleware is last in the stack, so a
message held back by a pause, a cap or a rate limit is not a start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from dramatiq import Broker, Message, Middleware

from gabay.keys import Keys

logger = logging.getLogger(__name__)

MARK_EVERY = 1.0


class StartMarks(Middleware):
    """Records the time of the latest start per queue in Redis (see the module docstring)."""

    def __init__(self, client: redis.Redis, keys: Keys, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self._marked: dict[str, float] = {}

    def before_process_message(self, broker: Broker, message: Message) -> None:
        now = self.clock()
        if now - self._marked.get(message.queue_name, 0.0) < MARK_EVERY:
            return
        self._marked[message.queue_name] = now
        try:
            self.client.set(self.keys.last_start(message.queue_name), repr(now))
        except redis.RedisError as exc:
            logger.debug("Could not mark the start on %s: %s", message.queue_name, exc)
