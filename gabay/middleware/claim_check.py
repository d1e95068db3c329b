"""ClaimChecks: a claim-checked message gets its arguments back just before it runs.

The broker's enqueue stored them (:mod:`gabay.cluster.claim_check`); this middleware fetches them
after the drain and pause gates and before the concurrency cap (whose fair share reads the
arguments). They are set on the delivery only (the worker calls the actor with them): the message
itself keeps its reference, so a retry, a put-back or a dead letter never carries the payload,
and Dramatiq's log lines (``process_form_response()``) show none of it.

A payload that is gone dead-letters the message at once with one line (PayloadMissing), without
retries. Redis not answering fails closed like every gate: the message goes back to its queue
without spending a retry. The payload of a message that succeeded is deleted.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from dramatiq import Broker, Middleware
from dramatiq.middleware import SkipMessage

from gabay.cluster.claim_check import CLAIM_OPTION, ClaimCheck
from gabay.cluster.intake import Intake
from gabay.errors import PayloadMissing

logger = logging.getLogger(__name__)


class PayloadGone(SkipMessage):
    """Skips (and dead-letters) a message whose payload is gone; the reason is its text."""


class ClaimChecks(Middleware):
    """Gives claim-checked deliveries their arguments; declares the actor option ``claim_check``."""

    def __init__(self, claims: ClaimCheck, intake: Intake) -> None:
        self.claims = claims
        self.intake = intake

    @property
    def actor_options(self) -> set[str]:
        return {CLAIM_OPTION}

    def before_process_message(self, broker: Broker, message: Any) -> None:
        if CLAIM_OPTION not in message.options:
            return
        try:
            args, kwargs = self.claims.claim(message)
        except PayloadMissing as exc:
            logger.warning("Dead-lettered without retries: %s", exc)
            message.fail()
            raise PayloadGone(str(exc)) from None
        # On the delivery, not the message: the proxy's own attributes shadow the message's.
        message.args, message.kwargs = args, kwargs

    def after_process_message(self, broker: Broker, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        if exception is not None or CLAIM_OPTION not in message.options:
            return
        if self.intake.was_put_back(message):
            return  # cut off by a drain: it runs again
        try:
            self.claims.release(message)
        except redis.RedisError as exc:
            logger.warning("Could not delete the payload of message %s (it expires): %s",
                           message.message_id, type(exc).__name__)
