"""Gabay's Dramatiq middleware, one concern per module, and the stack every broker uses."""

from __future__ import annotations

import redis
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from gabay.alerts.incidents import monitor_line as alerts_line
from gabay.alerts.service import AlertService, build_alerting
from gabay.cluster.claim_check import ClaimCheck
from gabay.cluster.dead_workers import DeadWorkers
from gabay.cluster.due import DueSet
from gabay.cluster.intake import Intake
from gabay.cluster.monitor import MonitorElection
from gabay.cluster.pause_flags import PauseFlags
from gabay.cluster.registry import WorkerRegistry
from gabay.cluster.stats import StatsWriter
from gabay.cluster.stats_buffer import StatsBuffer
from gabay.cluster.status_reader import StatusReader
from gabay.cluster.wakeups import WakeupListener
from gabay.jobs import JobStore
from gabay.limits.leases import Leases
from gabay.limits.window import RedisWindow
from gabay.middleware.alerting import Alerting
from gabay.middleware.cancellation import Cancellation
from gabay.middleware.claim_check import ClaimChecks
from gabay.middleware.concurrency import ConcurrencyCaps
from gabay.middleware.delayed import DelayedMessages
from gabay.middleware.draining import Draining
from gabay.middleware.due_messages import DueMessages
from gabay.middleware.excluded_queues import ExcludedQueues
from gabay.middleware.known_queues import KnownQueues
from gabay.middleware.memory_limit import MemoryLimit
from gabay.middleware.monitoring import MonitorLine, Section
from gabay.middleware.ownership import Ownership
from gabay.middleware.pause import Pause
from gabay.middleware.rate_limit import RateLimits
from gabay.middleware.recovery import Recovery
from gabay.middleware.registration import WorkerRegistration
from gabay.middleware.restarts import RestartOnRequest
from gabay.middleware.scheduler import Scheduling
from gabay.middleware.schema_check import SchemaCheck
from gabay.middleware.start_marks import StartMarks
from gabay.middleware.stats import RunningJobs, Stats
from gabay.middleware.tracing import TraceStages
from gabay.middleware.wakeups import Wakeups
from gabay.queues import FORM_RESPONSE_QUEUES
from gabay.schedules.status import leader_status, schedule_status
from gabay.schedules.status import monitor_line as schedules_line
from gabay.settings import Settings
from gabay.tracing import Tracing

#: Dramatiq's RedisBroker keeps a dead letter this long (its default ``dead_message_ttl``).
DEAD_MESSAGE_TTL_MS = 7 * 24 * 3600 * 1000


def build_middleware(settings: Settings, client: redis.Redis, intake: Intake,
                     dead_workers: DeadWorkers, due: DueSet,
                     tracing: Tracing | None = None) -> list[Middleware]:
    """Dramatiq's defaults without Prometheus (it binds 0.0.0.0 and keeps stale files), then ours.

    Every middleware gets its collaborators here, built once from ``settings`` and ``client``:
    ``intake`` is this worker process's (its id is the broker's), ``dead_workers`` the broker's
    heartbeat and dead-worker recovery, ``due`` the broker's set of messages waiting for a time.

    Order matters: ``before_*`` hooks run in list order, ``after_*`` hooks in reverse. Stats sits
    before Retries so that its ``after_process_message`` runs after Retries decided (it sees final
    failures). The gates run in the order draining, pause, concurrency cap, rate limit: a message
    is held back before it takes a slot, and it takes a (releasable) slot before it spends a
    (non-refundable) rate-limit start. Stats and RunningJobs share one buffer, published by one
    thread in one transaction. StartMarks comes after the gates: only a message that passed every
    gate started. Cancellation is last: a job may be interrupted only once every gate let it
    start, and its ``after_*`` hooks run first, as soon as the actor returns.
    ClaimChecks gives a claim-checked delivery its arguments back after the pause gate and before
    the cap. With ``tracing`` on, TraceStages comes second, so that its span covers every hook.
    """
    keys = settings.keys
    lease_ms = round(settings.heartbeat_timeout * 1000)
    buffer = StatsBuffer(StatsWriter(client, settings), intake.worker_id, lease_ms)
    leases = Leases(client, keys, lease_ms, worker_id=intake.worker_id)
    caps = ConcurrencyCaps(leases, intake)
    cancellation = Cancellation(client, keys, JobStore(client, settings), intake,
                                dead_letter_ttl_ms=DEAD_MESSAGE_TTL_MS)
    alerting = build_alerting(settings, client)
    stack: list[Middleware] = [
        KnownQueues(),  # first: a worker refuses to boot on --queues that name no queue
        SchemaCheck(settings),  # a worker refuses to boot on an old results schema
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Stats(buffer, intake),
        Retries(max_retries=10, min_backoff=2000, max_backoff=300_000),
        CurrentMessage(),
        Draining(intake, settings.drain_timeout),
        Pause(PauseFlags(client, settings), intake),
        # the payload back just before the cap (its fair share reads the arguments)
        ClaimChecks(ClaimCheck(client, keys, settings.claim_check_ttl), intake),
        caps,
        RateLimits(RedisWindow(client, keys), intake, due),
        Ownership(client, keys, intake, caps, leases, dead_workers, settings.heartbeat_timeout,
                  cancels=cancellation.check),
        RunningJobs(buffer),  # after the gates: only real starts count as running
        Recovery(dead_workers, intake, grace=settings.heartbeat_timeout),
        DelayedMessages(),
        DueMessages(due),
        Wakeups(WakeupListener(client, keys, intake)),
        WorkerRegistration(WorkerRegistry(client, settings), intake),
        RestartOnRequest(client, keys, intake=intake),
        MemoryLimit(client, keys, settings.worker_max_memory,
                    interval=settings.worker_memory_check_interval,
                    drain_timeout=settings.drain_timeout),
        MonitorLine(StatusReader(settings, client), MonitorElection(client, settings), intake,
                    sections=monitor_sections(settings, client, alerting)),
        Scheduling.from_settings(settings, client, intake),
        Alerting(alerting, intake),
    ]
    if tracing is not None and tracing.enabled:  # second: its span covers every other hook
        stack.insert(1, TraceStages(tracing))
    if not settings.enable_form_response_worker:
        stack.append(ExcludedQueues(FORM_RESPONSE_QUEUES, "ENABLE_FORM_RESPONSE_WORKER is false"))
    stack.append(StartMarks(client, keys))
    stack.append(cancellation)  # last: it marks a job interruptible only once every gate passed
    return stack


def monitor_sections(settings: Settings, client: redis.Redis,
                     alerting: AlertService) -> list[tuple[str, Section]]:
    """The monitoring line's lines after the seed's two: the schedules and the open alerts."""
    def schedules() -> str | None:
        return schedules_line(schedule_status(settings, client), leader_status(settings, client))

    def alerts() -> str | None:
        return alerts_line(alerting.incidents.incidents(alerting.rule_names))

    return [("Schedules", schedules), ("Alerts", alerts)]
