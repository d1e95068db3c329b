"""ExcludedQueues: queues this process must not consume, even when started as plain dramatiq.

With ``ENABLE_FORM_RESPONSE_WORKER=false`` the stack includes it for ``form-response-processing``:
its messages wait in Redis for a process that consumes them.
"""

from __future__ import annotations

import logging

from dramatiq import Broker, Middleware, Worker
from dramatiq.common import q_name

logger = logging.getLogger(__name__)

#: A queue name nothing is declared on: a whitelist that consumes nothing.
NO_QUEUE = "gabay-no-queue"


class ExcludedQueues(Middleware):
    """Removes ``queues`` from the worker's consumer whitelist before its consumers start."""

    def __init__(self, queues: tuple[str, ...], reason: str) -> None:
        self.queues = queues
        self.reason = reason

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        wanted = set(worker.consumer_whitelist or {q_name(q) for q in broker.get_declared_queues()})
        kept = wanted - set(self.queues)
        worker.consumer_whitelist = kept or {NO_QUEUE}
        logger.info("%s: not consuming %s.", self.reason, ", ".join(self.queues))
