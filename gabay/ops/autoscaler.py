"""``gabay workers --autoscale MIN,MAX``: grow and shrink this host's worker processes.

Each worker process is its own ``dramatiq gabay.actors -p 1`` command in its own process group,
not one command whose ``-p`` changes: Dramatiq's main process cannot stop one of its worker
processes alone (when one exits it stops them all), and a new ``-p`` means restarting the whole
command, draining every process at once. With independent commands one is removed by sending
SIGTERM to its main process, which drains its one worker process (gabay.middleware.draining: its
fetched messages go back at once, running jobs finish or go back at ``DRAIN_TIMEOUT``) while the
others keep working; a crash restarts only the command that died. The cost is one Dramatiq main
process per worker process.

Every ``AUTOSCALE_INTERVAL`` the autoscaler reads the cluster status, computes the desired count
for its queues (gabay.cluster.autoscale), and lets the hysteresis (gabay.ops.scaling_policy)
decide. Decisions are logged (logger ``gabay.autoscale``) and kept in Redis
(gabay.cluster.autoscale_log) for the dashboard.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import FrameType

import redis

from gabay.cluster.autoscale_log import AutoscaleLog, ScaleDecision
from gabay.cluster.status_reader import StatusReader
from gabay.ops.scaling_policy import Hysteresis, Observation, ScalingPolicy, Step
from gabay.ops.supervisor import MAX_BACKOFF, STABLE_AFTER, WorkerCommand
from gabay.settings import Settings

logger = logging.getLogger("gabay.autoscale")  # a stable name for log filters

FATAL_CODES = (2, 3, 4)  # import error, broker unreachable, pid file: restarting won't help


@dataclass
class Slot:
    """One ``dramatiq -p 1`` command: running, draining, or waiting to be restarted."""

    number: int
    popen: subprocess.Popen | None = None
    started: float = 0.0
    draining: bool = False
    restart_at: float | None = None
    backoff: float = 1.0


@dataclass
class Autoscaler:
    """Keeps between ``minimum`` and ``maximum`` single-process dramatiq commands running."""

    command: WorkerCommand
    reader: StatusReader
    decisions: AutoscaleLog
    minimum: int
    maximum: int
    on_restart: list[Callable[[], None]] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic
    slots: list[Slot] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _numbers: int = 0
    _last: ScaleDecision | None = None
    _desired: int = 0

    @classmethod
    def build(cls, command: WorkerCommand, client: redis.Redis, minimum: int, maximum: int) -> Autoscaler:
        settings = command.settings
        return cls(replace(command, processes=1), StatusReader(settings, client),
                   AutoscaleLog(client, settings.keys), minimum, maximum)

    @property
    def settings(self) -> Settings:
        return self.command.settings

    def hysteresis(self) -> Hysteresis:
        s = self.settings
        return Hysteresis(up_after=s.autoscale_up_after, down_after=s.autoscale_down_after,
                          cooldown=s.autoscale_cooldown, up_wait=s.autoscale_up_wait)

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._signal)
        policy = ScalingPolicy(self.hysteresis())
        for _ in range(self.minimum):
            self._start(self._new_slot())
        next_line = self.clock() + self.settings.monitor_interval
        while not self._stopping.is_set():
            fatal = self._reap()
            if fatal is not None:
                self._stop_all()
                return fatal
            self._observe(policy)
            if self.clock() >= next_line:
                self._log_line()
                next_line = self.clock() + self.settings.monitor_interval
            self._stopping.wait(self.settings.autoscale_interval)
        return self._stop_all()

    # -- the processes ----------------------------------------------------------------------------

    def _new_slot(self) -> Slot:
        self._numbers += 1
        slot = Slot(self._numbers)
        self.slots.append(slot)
        return slot

    def _start(self, slot: Slot) -> None:
        # A group of its own: a terminal's Ctrl-C reaches only this process, which drains them all.
        slot.popen = subprocess.Popen(self.command.argv(), env=self.command.env(), process_group=0)
        slot.started, slot.restart_at = self.clock(), None

    def _drain(self, slot: Slot) -> None:
        """SIGTERM to the command's main process, which forwards it once: its worker drains.

        Not to the group: Dramatiq's main process blocks signals until its worker is online, so a
        command still booting would pass its copy on seconds after the group's, and a second
        SIGTERM later than ``REPEAT_WINDOW`` stops a worker at once instead of draining it.
        """
        slot.draining = True
        if slot.popen is None or slot.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            slot.popen.send_signal(signal.SIGTERM)

    def _reap(self) -> int | None:
        """Remove drained slots, restart crashed ones with backoff; a fatal exit code ends all."""
        now = self.clock()
        for slot in list(self.slots):
            if slot.popen is None:
                if slot.restart_at is not None and now >= slot.restart_at and not slot.draining:
                    self._start(slot)
                elif slot.draining:
                    self.slots.remove(slot)
                continue
            code = slot.popen.poll()
            if code is None:
                continue
            slot.popen = None
            if slot.draining:
                logger.info("Worker command %s drained and stopped (code %s)", slot.number, code)
                self.slots.remove(slot)
            elif code in FATAL_CODES:
                logger.error("dramatiq exited with code %s; not restarting", code)
                return code
            else:
                if now - slot.started > STABLE_AFTER:
                    slot.backoff = 1.0
                logger.warning("Worker command %s exited unexpectedly (code %s); restarting in %.0f s",
                               slot.number, code, slot.backoff)
                slot.restart_at = now + slot.backoff
                slot.backoff = min(slot.backoff * 2, MAX_BACKOFF)
                for callback in self.on_restart:
                    callback()
        return None

    def _stop_all(self) -> int:
        for slot in self.slots:
            self._drain(slot)
        codes = [slot.popen.wait() for slot in self.slots if slot.popen is not None]
        return 0 if all(code in (0, -signal.SIGTERM) for code in codes) else max(codes)

    def _signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:  # reload: each command re-executes its workers
            for slot in self.slots:
                if slot.popen is not None and slot.popen.poll() is None and not slot.draining:
                    slot.popen.send_signal(signal.SIGHUP)
            return
        self._stopping.set()

    # -- the decisions ----------------------------------------------------------------------------

    def active(self) -> list[Slot]:
        return [slot for slot in self.slots if not slot.draining]

    def _observe(self, policy: ScalingPolicy) -> None:
        try:
            status = self.reader.read()
            if not status.redis_reachable:
                return
            queues = self.command.queues
            self._desired, per_queue = self.reader.desired_for(
                status.per_queue, queues, threads=self.command.threads,
                minimum=self.minimum, maximum=self.maximum)
            waiting = [q for q in queues if q in status.per_queue and status.per_queue[q].waiting]
            oldest = max((self.reader.oldest_waiting_age(q) for q in waiting), default=0.0)
            seen = Observation(now=self.clock(), desired=self._desired, current=len(self.active()),
                               oldest_wait=oldest, draining=len(self.slots) - len(self.active()))
            step = policy.observe(seen)
            if step is not None:
                self._apply(step, per_queue)
        except redis.RedisError as exc:
            logger.warning("Autoscale: the cluster status could not be read (%s)", type(exc).__name__)

    def _apply(self, step: Step, per_queue: dict[str, int]) -> None:
        if step.after > step.before:
            for _ in range(step.after - step.before):
                self._start(self._new_slot())
        else:
            for slot in sorted(self.active(), key=lambda s: -s.number)[: step.before - step.after]:
                self._drain(slot)
        wanted = ", ".join(f"{q} {n}" for q, n in sorted(per_queue.items()) if n) or "no queue has work"
        decision = ScaleDecision(at=time.time(), direction=step.direction, before=step.before,
                                 after=step.after, desired=step.desired,
                                 reason=f"{step.reason} (per queue: {wanted})",
                                 host=socket.gethostname(), pid=os.getpid())
        self._last = decision
        logger.info("Autoscale: %s", decision.describe())
        try:
            self.decisions.record(decision)
        except redis.RedisError as exc:
            logger.warning("Autoscale: the decision could not be kept in Redis (%s)", type(exc).__name__)

    def _log_line(self) -> None:
        """The autoscaler's monitoring line, every ``MONITOR_INTERVAL``."""
        active = len(self.active())
        last = (f"{self._last.describe()} {time.time() - self._last.at:.0f} s ago"
                if self._last else "no decision yet")
        logger.info("Autoscale - Processes: %s (draining %s), Desired: %s, Range: %s-%s, Last: %s",
                    active, len(self.slots) - active, self._desired, self.minimum, self.maximum, last)
