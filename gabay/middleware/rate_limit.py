"""Exact, cluster-wide rate limits per actor: ``@dramatiq.actor(rate_limit="10/m")``.

The option (a string such as ``"10/m"``, ``"5/2s"`` or a :class:`gabay.limits.rates.Rate`) resolves as
message option, then actor option. With ``10/m`` no 60-second window anywhere in the cluster sees
an 11th start of the actor (see :mod:`gabay.limits.window` for the algorithm and its proof
sketch). A message over the limit is never failed: it waits for its reserved start, briefly in the
worker thread or deferred through the delay queue (:mod:`gabay.limits.waiting`), keeping its
retry count. Actors without the option cost one dictionary lookup, no Redis round trip.

This middleware runs after ConcurrencyCaps: a message first holds a slot, then spends a start.
When it is deferred here, the cap's ``after_skip_message`` returns the slot.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq
from dramatiq import Broker, Middleware

from gabay.cluster.deferral import defer
from gabay.cluster.due import DueSet
from gabay.cluster.intake import Intake
from gabay.limits.options import option_of
from gabay.limits.rates import Rate, parse_rate
from gabay.limits.waiting import HOLD_MS, deferral_delay, should_hold
from gabay.limits.window import RedisWindow

logger = logging.getLogger(__name__)

#: Message option holding the message's reservation (Redis clock, microseconds).
RESERVATION_OPTION = "gabay_rate_at"
#: Message option set at the start: the start time the limiter recorded (microseconds).
STARTED_OPTION = "gabay_rate_started"


class RateLimits(Middleware):
    """Defer, never fail, messages of actors over their ``rate_limit``."""

    def __init__(self, window: RedisWindow, intake: Intake, due: DueSet) -> None:
        self.window = window
        self.intake = intake
        self.due = due
        self._parsed: dict[Any, Rate] = {}

    @property
    def actor_options(self) -> set[str]:
        return {"rate_limit"}

    def after_declare_actor(self, broker: Broker, actor: dramatiq.Actor) -> None:
        """Reject a malformed rate when the actor is declared, not when a message arrives."""
        if actor.options.get("rate_limit") is not None:
            self._rate_of(actor.options["rate_limit"])

    def before_process_message(self, broker: Broker, message: dramatiq.Message) -> None:
        option = option_of(broker, message, "rate_limit")
        if option is None:
            return
        self._wait_for_start(broker, message, self._rate_of(option))

    def _wait_for_start(self, broker: Broker, message: dramatiq.Message, rate: Rate) -> None:
        window = self.window
        reserved = message.options.get(RESERVATION_OPTION)
        budget_end = time.monotonic() + HOLD_MS / 1000
        while True:
            budget_ms = (budget_end - time.monotonic()) * 1000
            decision = window.try_start(message.actor_name, rate, message.message_id, reserved,
                                        patience_us=max(round(budget_ms * 1000), 0))
            if decision.started:
                message.options.pop(RESERVATION_OPTION, None)
                message.options[STARTED_OPTION] = decision.now
                return
            reserved = decision.reserved
            if not should_hold(decision.wait_ms, budget_ms):
                defer(self.due, self.intake, message, deferral_delay(decision.wait_ms), "rate limit",
                      options={RESERVATION_OPTION: reserved})
            self.intake.draining.wait(decision.wait_ms / 1000)  # a drain wakes it at once
            self.intake.leave_if_draining(message)

    def _rate_of(self, option: Any) -> Rate:
        rate = self._parsed.get(option)
        if rate is None:
            rate = self._parsed[option] = parse_rate(option)
        return rate

