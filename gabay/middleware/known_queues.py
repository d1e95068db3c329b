"""KnownQueues: ``dramatiq gabay.actors --queues bogus`` stops instead of consuming nothing.

Dramatiq consumes exactly the names given to ``--queues`` (``-Q``), known or not, so a typo runs
a worker that never takes a message. At worker boot, before any consumer starts, every name in
the worker's queue set must be one of gabay's queues (:data:`gabay.queues.ALL_QUEUES`) or a queue
an imported actor module declared (with or without Dramatiq's ``.DQ``/``.XQ`` suffix); otherwise
the process prints one line naming it and exits with code 2, a configuration error that
``gabay workers`` does not restart. ``gabay workers -Q`` refuses the same names before it starts.
An in-process ``Worker`` (tests, scripts) only logs the line.
"""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.common import q_name
from dramatiq.middleware import Middleware

from gabay.cluster.startup import in_dramatiq_worker_process, stop_on
from gabay.errors import UnknownQueue
from gabay.queues import ALL_QUEUES

logger = logging.getLogger(__name__)


class KnownQueues(Middleware):
    """Refuses a worker whose ``--queues`` name a queue nothing declares."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        wanted = worker.consumer_whitelist
        if not wanted:
            return  # every declared queue
        known = set(ALL_QUEUES) | {q_name(q) for q in broker.get_declared_queues()}
        unknown = sorted(name for name in wanted if q_name(name) not in known)
        if not unknown:
            return
        problem = UnknownQueue(f"unknown queue {', '.join(map(repr, unknown))} in --queues; known "
                               f"queues: {', '.join(sorted(known, key=_order))}")
        if not in_dramatiq_worker_process():  # an in-process Worker (a test, a script): say it
            logger.error("gabay: %s", problem)
            return
        stop_on(problem)


def _order(name: str) -> tuple[int, str]:
    """gabay's queues in their usual order, then the other declared ones by name."""
    return (ALL_QUEUES.index(name), "") if name in ALL_QUEUES else (len(ALL_QUEUES), name)
