"""The scheduler of one worker process: a lease thread and a fire thread; only the leader fires.

Every worker process runs one (:class:`gabay.middleware.scheduler.Scheduling` starts it). The
lease thread renews the lease every quarter of ``SCHEDULE_LEASE_SECONDS``; a process that does not
lead retries when the holder's lease would run out, so after the leader dies another takes over
within the lease time of its last renewal. The fire thread, every ``SCHEDULE_TICK_SECONDS``,
decides for each schedule (:mod:`gabay.schedules.policy`) on the Redis server's clock
(:class:`~gabay.cluster.clock.RedisClock`) and applies the decision in one atomic script that
checks the fencing token (:mod:`gabay.schedules.firing`).

It fails closed: when Redis does not answer nothing fires (a slot can only be recorded and enqueued
by the script), the failure is logged once per outage, and the process stops acting as leader once
its lease may have run out. A slot missed meanwhile is handled by its misfire policy. Both threads
report failures to one :class:`~gabay.cluster.outage.Outage`; only the lease thread, which talks to
Redis every quarter lease whatever happens, declares the outage over, and only when no fire pass
failed since its previous look (a pass with nothing due proves nothing about Redis).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping

import redis

from gabay.cluster.clock import RedisClock
from gabay.cluster.outage import Outage
from gabay.cluster.periodic import Periodic
from gabay.keys import Keys
from gabay.schedules.config import Schedule
from gabay.schedules.cron import local, next_slot
from gabay.schedules.firing import ALREADY, FIRED, NOT_LEADER, SKIPPED, Firing
from gabay.schedules.lease import LeaderLease, Term
from gabay.schedules.policy import Decision, decide

logger = logging.getLogger(__name__)


class Scheduler:
    """Leader election and firing of ``schedules`` for one process named ``identity``."""

    def __init__(self, schedules: list[Schedule], client: redis.Redis, keys: Keys, *, identity: str,
                 lease_seconds: float, tick_seconds: float, clock: RedisClock | None = None,
                 stand_aside: Callable[[], bool] = lambda: False) -> None:
        self.schedules = schedules
        self.client, self.keys = client, keys
        self.lease_seconds = lease_seconds
        self.tick_seconds = tick_seconds
        self.lease = LeaderLease(client, keys, identity, round(lease_seconds * 1000))
        self.firing = Firing(client, keys)
        self.clock = clock or RedisClock(client)
        self.stand_aside = stand_aside
        self.outage = Outage(logger, "Scheduling (the leader lease and firing)")
        self._fire_failed = False  # a fire pass failed since the lease thread last looked
        self._term: Term | None = None
        self._valid_until = 0.0  # time.monotonic() after which this process may no longer lead
        self._next: dict[str, int | None] = {}  # per schedule, the first slot not known handled
        self._queues: dict[str, str] = {}
        self._stop = threading.Event()
        self._lease_thread: threading.Thread | None = None
        self._fires: Periodic | None = None

    @property
    def term(self) -> Term | None:
        """The term this process holds now, by its own count (the fire script has the last word)."""
        term = self._term
        return term if term is not None and time.monotonic() < self._valid_until else None

    def start(self, queues: Mapping[str, str]) -> None:
        """Start both threads; ``queues``: actor name -> queue name (the actors this process has)."""
        self._queues = dict(queues)
        if not self.schedules:
            return
        self._stop.clear()
        self._lease_thread = threading.Thread(target=self._lease_loop, name="gabay-schedule-lease",
                                              daemon=True)
        self._lease_thread.start()
        self._fires = Periodic("gabay-schedule-fire", self.tick_seconds, self.fire_once)
        self._fires.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads and give the lease up, so another process takes over at once."""
        self._stop.set()
        if self._fires is not None:
            self._fires.stop(timeout)
        if self._lease_thread is not None:
            self._lease_thread.join(timeout)
        self._step_down("this process stops")

    # -- the lease thread -------------------------------------------------------------------------

    def _lease_loop(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(self.renew_once())

    def renew_once(self) -> float:
        """One acquire-or-renew; returns the seconds until the next one."""
        renew_every = self.lease_seconds / 4
        if self.stand_aside():
            self._step_down("this process is draining")
            return renew_every
        sent = time.monotonic()
        try:
            attempt = self.lease.acquire(self._term)
        except redis.RedisError as exc:
            self.outage.failed(exc)
            return min(renew_every, 1.0)
        if self._fire_failed:  # not over yet for the fire thread: its next clean pass ends it
            self._fire_failed = False
        else:
            self.outage.worked()
        if attempt.term is None:
            if self._term is not None:
                logger.warning("No longer the schedules' leader (term %d): another process holds the "
                               "lease.", self._term.token)
            self._term = None
            wait = attempt.remaining_ms / 1000 + 0.01 if attempt.remaining_ms > 0 else renew_every
            return min(wait, renew_every)
        if attempt.term != self._term:
            logger.info("This process is the schedules' leader (fencing token %d).", attempt.term.token)
            self._next.clear()
        self._term = attempt.term
        self._valid_until = sent + self.lease_seconds
        return renew_every

    def _step_down(self, why: str) -> None:
        term, self._term = self._term, None
        if term is None:
            return
        try:
            self.lease.release(term)
            logger.info("Gave up the schedules' lease (term %d): %s.", term.token, why)
        except redis.RedisError as exc:
            logger.warning("Could not give up the schedules' lease (%s: %s); it runs out by itself.",
                           type(exc).__name__, exc)

    # -- the fire thread --------------------------------------------------------------------------

    def fire_once(self) -> None:
        """One pass over the schedules, if this process leads."""
        term = self.term
        if term is None or self.stand_aside():
            return
        try:
            now = self.clock.now_ms()
            for schedule in self.schedules:
                if not self._check(schedule, term, now):
                    return
        except redis.RedisError as exc:
            self._fire_failed = True
            self.outage.failed(exc)

    def _check(self, schedule: Schedule, term: Term, now: int) -> bool:
        """Handle ``schedule``'s due slot, if any; False when this process turned out not to lead."""
        name = schedule.name
        if name in self._next:
            upcoming = self._next[name]
            if upcoming is None or now < upcoming:
                return True
        last = self.firing.last_slot(name)
        decision = decide(schedule, now, last)
        if decision is None:
            self._next[name] = next_slot(schedule, now if last is None else last)
            return True
        queue = self._queues.get(schedule.actor)
        if queue is None and decision.action == "fire":
            decision = Decision(decision.slot, "skip", decision.late_ms,
                                f"actor {schedule.actor!r} is not declared in the leader")
        result = self.firing.apply(term, schedule, decision, queue or "", now)
        if result.code == NOT_LEADER:
            logger.warning("Schedule %r not fired: the lease of term %d is gone.", name, term.token)
            self._term = None
            return False
        handled = int(result.detail) if result.code == ALREADY else decision.slot
        self._next[name] = next_slot(schedule, handled)
        self._log(schedule, decision, result.code, result.detail, result.message_id)
        self._report(schedule, decision, result.code, result.detail)
        return True

    def _report(self, schedule: Schedule, decision: Decision, code: int, detail: str) -> None:
        """Tell the ``missed_schedule`` alert (a hash the alerts read): a slot missed (fired
        late or skipped by the misfire policy) opens it, a run on time closes it."""
        if code == FIRED and not decision.late:
            self.client.hdel(self.keys.missed_schedules, schedule.name)
        elif code == FIRED or (code == SKIPPED and detail not in {"paused", "disabled"}):
            slot = local(schedule, decision.slot).isoformat()
            self.client.hset(self.keys.missed_schedules, schedule.name,
                             json.dumps({"slot": slot, "at": time.time()}))

    @staticmethod
    def _log(schedule: Schedule, decision: Decision, code: int, detail: str, message_id: str) -> None:
        at = local(schedule, decision.slot).isoformat()
        if code == FIRED:
            late = f", {decision.late_ms / 1000:.1f} s late (misfire = run_once)" if decision.late else ""
            logger.info("Schedule %r fired its %s run as message %s%s.", schedule.name, at, message_id,
                        late)
        elif code == SKIPPED:
            log = logger.debug if detail in {"paused", "disabled"} else logger.warning
            log("Schedule %r skipped its %s run: %s.", schedule.name, at, detail)
