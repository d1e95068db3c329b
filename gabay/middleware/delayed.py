"""DelayedMessages: a due delayed message moves to its queue, and is kept while Redis refuses.

Each Dramatiq consumer thread holds the delayed messages it fetched (deferrals, retry backoffs,
delayed sends) in memory until they are due, then enqueues a copy on the real queue and acks the
delayed one. When that enqueue fails (Redis down, or refusing writes), Dramatiq drops the message
from memory while its id stays in this process's acks set of the delay queue, where nothing
recovers it as long as the process lives. This middleware gives every consumer thread a version
that puts the message back into its delay queue and tries again on the thread's next turn.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import redis
from dramatiq import Broker, Middleware
from dramatiq.common import current_millis, iter_queue, q_name
from dramatiq.errors import ConnectionError as DramatiqConnectionError

from gabay.cluster.outage import Outage

logger = logging.getLogger(__name__)


class DelayedMessages(Middleware):
    """Replaces each consumer thread's ``handle_delayed_messages`` (see the module docstring)."""

    def __init__(self) -> None:
        self.outage = Outage(logger, "Moving due delayed messages to their queue")

    def after_consumer_thread_boot(self, broker: Broker, thread: Any) -> None:
        thread.handle_delayed_messages = functools.partial(self.move_due, broker, thread)

    def move_due(self, broker: Broker, thread: Any) -> None:
        """Enqueue the due delayed messages of ``thread``; keep them when Redis refuses."""
        for eta, message in iter_queue(thread.delay_queue):
            if eta > current_millis():
                thread.delay_queue.put((eta, message))
                thread.delay_queue.task_done()
                return
            copy = message.copy(queue_name=q_name(message.queue_name))
            del copy.options["eta"]
            try:
                broker.enqueue(copy)
            except (redis.RedisError, DramatiqConnectionError) as exc:
                thread.delay_queue.put((eta, message))
                thread.delay_queue.task_done()
                self.outage.failed(exc)  # kept in memory, moved on a later turn
                return
            self.outage.worked()
            thread.post_process_message(message)
            thread.delay_queue.task_done()
