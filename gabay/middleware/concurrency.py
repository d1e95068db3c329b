"""Cluster-wide concurrency caps per actor: ``@dramatiq.actor(max_concurrency=3)``.

The option resolves as message option, then actor option. Never more than N messages of the
actor run at once across every worker process and host on the same Redis. Slots are leases
(:mod:`gabay.limits.leases`): a killed worker's slot returns within the lease (the broker's
``HEARTBEAT_TIMEOUT``), and a live holder never loses its slot however long it runs.

A message that finds the cap full is not failed. If a slot is expected soon (or the message comes
back for its reserved turn) it waits in the worker thread, woken by the next release; otherwise it
reserves the next turn on the actor's cursor and is deferred until shortly before it
(:mod:`gabay.limits.waiting`), keeping its retry count. The slot is released when the actor
finishes (success or failure) and when a later middleware skips the message (a rate-limit or
pause deferral). Actors without the option cost one dictionary lookup, no Redis round trip.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq import Broker, Middleware, Worker

from gabay.cluster.intake import Intake
from gabay.limits.deferral import defer
from gabay.limits.leases import Leases
from gabay.limits.options import option_of
from gabay.limits.waiting import HOLD_MS, LEAD_MS, deferral_delay

#: Longest single wait for a release: a drain that begins meanwhile is seen this soon (ms).
WAKE_MS = 500
#: Message option holding the message's reserved turn (Redis clock, milliseconds).
RESERVATION_OPTION = "gabay_cap_at"


@dataclass(frozen=True)
class _Slot:
    member: str
    limit: int
    started: float  # time.monotonic() at acquisition


class ConcurrencyCaps(Middleware):
    """Hold back messages of actors at their ``max_concurrency``."""

    def __init__(self, leases: Leases, intake: Intake) -> None:
        self.leases = leases
        self.intake = intake
        self._slots: dict[int, _Slot] = {}  # id(message) -> slot held for it

    @property
    def actor_options(self) -> set[str]:
        return {"max_concurrency"}

    def after_declare_actor(self, broker: Broker, actor: dramatiq.Actor) -> None:
        """Reject a malformed cap when the actor is declared, not when a message arrives."""
        if actor.options.get("max_concurrency") is not None:
            _limit_of(actor.options["max_concurrency"])

    def before_process_message(self, broker: Broker, message: dramatiq.Message) -> None:
        option = option_of(broker, message, "max_concurrency")
        if option is None:
            return
        self._take_slot(broker, message, _limit_of(option))

    def slot_of(self, message: dramatiq.Message) -> tuple[str, int] | None:
        """(lease, limit) of the slot held for ``message``, if its actor is capped."""
        slot = self._slots.get(id(message))
        return (slot.member, slot.limit) if slot is not None else None

    def after_process_message(self, broker: Broker, message: dramatiq.Message, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        self._give_back(message, finished=True)

    def after_skip_message(self, broker: Broker, message: dramatiq.Message) -> None:
        self._give_back(message, finished=False)

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self.leases.close()

    def _take_slot(self, broker: Broker, message: dramatiq.Message, limit: int) -> None:
        leases = self.leases
        reserved = message.options.get(RESERVATION_OPTION)
        budget_end = time.monotonic() + HOLD_MS / 1000
        reserve = False
        while True:
            self.intake.leave_if_draining(message)
            attempt = leases.acquire(message.actor_name, limit, reserve)
            if attempt.acquired:
                message.options.pop(RESERVATION_OPTION, None)
                self._slots[id(message)] = _Slot(attempt.member, limit, time.monotonic())
                return
            if reserve:
                defer(broker, message, deferral_delay(attempt.wait_ms), "concurrency cap",
                      options={RESERVATION_OPTION: attempt.at})
            budget_ms = (budget_end - time.monotonic()) * 1000
            my_turn = reserved is not None and reserved <= attempt.now + LEAD_MS
            if budget_ms <= 0 or not (my_turn or attempt.wait_ms <= HOLD_MS):
                reserve = True
                continue
            leases.wait_for_release(message.actor_name, min(budget_ms, WAKE_MS))

    def _give_back(self, message: dramatiq.Message, *, finished: bool) -> None:
        slot = self._slots.pop(id(message), None)
        if slot is None:
            return
        run_ms = round((time.monotonic() - slot.started) * 1000) if finished else None
        self.leases.release(message.actor_name, slot.member, run_ms, slot.limit)


def _limit_of(option: Any) -> int:
    if isinstance(option, bool) or not isinstance(option, int) or option < 1:
        raise ValueError(f"max_concurrency must be a positive integer, not {option!r}")
    return option
