"""Cluster-wide concurrency caps per actor: ``@dramatiq.actor(max_concurrency=3)``.

The option resolves as message option, then actor option. Never more than N messages of the
actor run at once across every worker process and host on the same Redis. Slots are leases
(:mod:`gabay.limits.leases`): a killed worker's slot returns within the lease (the broker's
``HEARTBEAT_TIMEOUT``), and a live holder never loses its slot however long it runs.

A message that finds the cap full is not failed and does not hold its thread: it waits in the
actor's waiting room in Redis, ranked by its tenant's lane (fair share between teachers), its
priority (:mod:`gabay.limits.priority`) and its age (see :mod:`gabay.limits.leases`). Each freed
slot goes at once to the next waiter, cluster-wide. The slot is released when the actor finishes (success or
failure) and when a later middleware skips the message (a rate-limit or pause deferral). Actors
without the option cost one dictionary lookup, no Redis round trip.

The tenant of a message is its ``tenant`` option, else what the actor's ``tenant_of`` option (a
function of the message's arguments) returns; the feedback worker uses the teacher's id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
import redis
from dramatiq import Broker, Middleware, Worker

from gabay.cluster.deferral import skip_quietly
from gabay.cluster.intake import Intake
from gabay.cluster.outage import Outage
from gabay.cluster.periodic import Periodic
from gabay.limits.leases import Leases, Waiter
from gabay.limits.options import option_of
from gabay.limits.priority import priority_of

logger = logging.getLogger(__name__)

#: How often each process hands on slots freed without a release (lapsed leases), in seconds.
MAINTAIN_EVERY = 1.0
#: The message option naming its tenant (a teacher's or school's id, never a name).
TENANT_OPTION = "tenant"
#: The message option giving its tenant's share (default 1; 2 takes two turns per round).
TENANT_WEIGHT_OPTION = "tenant_weight"


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
        self.outage = Outage(logger, "Handing free cap slots to waiting messages")
        self._slots: dict[int, _Slot] = {}  # id(message) -> slot held for it
        self._maintenance: Periodic | None = None

    @property
    def actor_options(self) -> set[str]:
        return {"max_concurrency", "tenant_of"}

    def after_declare_actor(self, broker: Broker, actor: dramatiq.Actor) -> None:
        """Reject a malformed cap when the actor is declared, not when a message arrives."""
        if actor.options.get("max_concurrency") is not None:
            _limit_of(actor.options["max_concurrency"])
        if actor.options.get("tenant_of") is not None and not callable(actor.options["tenant_of"]):
            raise ValueError(f"tenant_of of {actor.actor_name} must be a function of its arguments")

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._maintenance = Periodic("gabay-cap-handoff", MAINTAIN_EVERY, self.maintain)
        self._maintenance.start()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._maintenance is not None:
            self._maintenance.stop()

    def maintain(self) -> None:
        """Hand on slots that freed without a release; nudge this process's consumers if any."""
        try:
            handed = self.leases.maintain()
        except redis.RedisError as exc:
            self.outage.failed(exc)
            return
        self.outage.worked()
        if handed:
            self.intake.nudge()

    def before_process_message(self, broker: Broker, message: dramatiq.Message) -> None:
        option = option_of(broker, message, "max_concurrency")
        if option is None:
            return
        limit = _limit_of(option)
        self.intake.leave_if_draining(message)
        attempt = self.leases.acquire(message.actor_name, limit, message.options["redis_message_id"])
        if attempt.acquired:
            self._slots[id(message)] = _Slot(attempt.member, limit, time.monotonic())
            return
        parked = self.leases.park(message.actor_name, limit, message, self._waiter(broker, message))
        self.intake.disown(message, deferred=True)  # it waits in Redis: no ack from here
        if not parked.parked:
            logger.warning("Message %s was no longer this process's to hold back (given to "
                           "another).", message.message_id)
        if parked.handed:
            self.intake.nudge(message.queue_name)
        skip_quietly("concurrency cap")

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

    def _waiter(self, broker: Broker, message: dramatiq.Message) -> Waiter:
        weight = message.options.get(TENANT_WEIGHT_OPTION, 1)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight <= 100:
            weight = 1
        return Waiter(tenant=_tenant_of(broker, message), weight=float(weight),
                      priority=priority_of(broker, message))

    def _give_back(self, message: dramatiq.Message, *, finished: bool) -> None:
        slot = self._slots.pop(id(message), None)
        if slot is None:
            return
        run_ms = round((time.monotonic() - slot.started) * 1000) if finished else None
        if self.leases.release(message.actor_name, slot.member, run_ms, slot.limit):
            self.intake.nudge(message.queue_name)


def _tenant_of(broker: Broker, message: dramatiq.Message) -> str:
    tenant = message.options.get(TENANT_OPTION)
    if tenant is None:
        tenant_of: Callable[..., Any] | None = broker.get_actor(message.actor_name).options.get("tenant_of")
        if tenant_of is not None:
            try:
                tenant = tenant_of(*message.args, **message.kwargs)
            except Exception:  # bad input is the actor's to reject, not the gate's
                tenant = None
    return "" if tenant is None else str(tenant)[:200]


def _limit_of(option: Any) -> int:
    if isinstance(option, bool) or not isinstance(option, int) or option < 1:
        raise ValueError(f"max_concurrency must be a positive integer, not {option!r}")
    return option
