"""Reading the cluster's status from Redis: queue lengths, counters, workers, pauses and health.

Every number is cluster-wide (all worker processes on all hosts). One reader serves the worker
manager (CLI, dashboard, platform API) and the monitoring line that the workers log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import redis

from gabay.cluster.autoscale import QueueLimit, QueueLoad, desired_replicas, queue_limits
from gabay.cluster.clock import RedisClock
from gabay.cluster.connection import redis_problem as describe_redis_problem
from gabay.cluster.dead_workers import DeadWorkers, Stranded
from gabay.cluster.pause_flags import PauseFlags
from gabay.cluster.registry import WorkerInfo, WorkerRegistry
from gabay.cluster.stats import QueueStats
from gabay.cluster.status import (
    ClusterStatus,
    FormResponseWorkerStatus,
    QueueStatus,
    WorkersStatus,
    WorkloadStatus,
)
from gabay.errors import RedisUnavailable
from gabay.keys import DELAY_SUFFIX
from gabay.queues import ALL_QUEUES, FORM_RESPONSE, QUESTION_QUEUES
from gabay.settings import Settings

#: How many tenants the status lists per queue (those with the most waiting messages).
TOP_TENANTS = 10
#: Delayed messages per queue whose reason the status reads (those due soonest).
REASON_SAMPLE = 1000
#: Option that a message deferred by a rate limit carries while it waits in the due set
#: (gabay.middleware.rate_limit.RESERVATION_OPTION, a layer above; a test keeps them equal).
RATE_LIMIT_RESERVATION = "gabay_rate_at"


class StatusReader:
    """Builds a :class:`ClusterStatus` from what the worker processes keep in Redis."""

    def __init__(self, settings: Settings, client: redis.Redis, *,
                 enable_form_response_worker: bool | None = None) -> None:
        self.settings = settings
        self.client = client
        self.keys = settings.keys
        self.enable_form_response_worker = (
            settings.enable_form_response_worker if enable_form_response_worker is None
            else enable_form_response_worker
        )
        self.pause_flags = PauseFlags(client, settings)
        self.stats = QueueStats(client, settings)
        self.registry = WorkerRegistry(client, settings)
        self.dead_workers = DeadWorkers(client, self.keys, RedisClock(client),
                                        round(settings.heartbeat_timeout * 1000))

    def read(self) -> ClusterStatus:
        """The cluster's status; never raises for an unreachable Redis (healthy false instead)."""
        now = time.time()
        try:
            return self._read(now)
        except (redis.RedisError, RedisUnavailable) as exc:
            return ClusterStatus.unreachable(
                redis_problem(exc, self.client), enabled=self.enable_form_response_worker,
                checked_at=now,
            )

    def _read(self, now: float) -> ClusterStatus:
        queues = ALL_QUEUES
        broker_counts, last_starts, restarts = self._read_keys(queues)
        held = self._held()
        paused = self.pause_flags.paused_queues()
        workers = self.registry.workers()
        stranded = {s.queue: s for s in self.dead_workers.stranded()}
        per_queue = {}
        reasons_of = self._delayed_reasons(broker_counts)
        for queue in queues:
            counters = self.stats.counters(queue)
            waiting, dramatiq_delayed, due, dead = broker_counts[queue]
            per_queue[queue] = QueueStatus(
                name=queue, waiting=waiting, delayed=dramatiq_delayed + due, dead_lettered=dead,
                delayed_by_reason=reasons_of[queue],
                held=held[queue].count if queue in held else 0,
                held_by_priority=held[queue].by_priority if queue in held else {},
                held_by_tenant=held[queue].by_tenant if queue in held else {},
                held_tenants=held[queue].tenants if queue in held else 0,
                stranded=stranded[queue].count if queue in stranded else 0,
                running=counters.running, completed=counters.completed, failed=counters.failed,
                paused=queue in paused, consumers=sum(1 for w in workers if consumes(w, queue)),
                last_started_at=last_starts[queue],
            )
        reasons = self._health_reasons(per_queue, workers, now) + self._stranded_reasons(stranded)
        started = [w.started_at for w in workers]
        settings = self.settings
        desired, per_queue_desired = self.desired_for(
            per_queue, queues, threads=settings.worker_threads,
            minimum=settings.autoscale_min_processes, maximum=settings.autoscale_max_processes)
        for queue, replicas in per_queue_desired.items():
            per_queue[queue].desired_replicas = replicas
        return ClusterStatus(
            healthy=not reasons,
            reasons=reasons,
            workers=WorkersStatus(
                is_running=any(consumes(w, q) for w in workers for q in QUESTION_QUEUES),
                worker_count=len(workers),
                concurrency=sum(w.threads for w in workers),
            ),
            queues=self._question_jobs(per_queue),
            form_response_worker=FormResponseWorkerStatus(
                **_workload([per_queue[FORM_RESPONSE]]).model_dump(),
                is_running=per_queue[FORM_RESPONSE].consumers > 0,
                enabled=self.enable_form_response_worker,
                worker_count=per_queue[FORM_RESPONSE].consumers,
            ),
            restart_attempts=restarts,
            memory_recycles=int(self.client.get(self.keys.memory_recycles) or 0),
            uptime=max(now - min(started), 0.0) if started else 0.0,
            per_queue=per_queue,
            paused_queues=sorted(paused),
            checked_at=now,
            desired_replicas=desired,
        )

    def desired_for(self, per_queue: dict[str, QueueStatus], queues: Iterable[str], *, threads: int,
                    minimum: int, maximum: int) -> tuple[int, dict[str, int]]:
        """The process count these queues' work can use (bounded) and each queue's own.

        The average run times of the limited actors come from their caps' stats in Redis
        (``avg``, ms), else ``AUTOSCALE_DEFAULT_RUN_SECONDS``.
        """
        limits = queue_limits(self.settings)
        names = [q for q in queues if q in per_queue]
        actors = sorted({limit.actor for q, limit in limits.items() if q in names and limit.actor})
        pipe = self.client.pipeline(transaction=False)
        for actor in actors:
            pipe.hget(self.keys.cap_stats(actor), "avg")
        averages = {actor: float(raw) / 1000 for actor, raw in zip(actors, pipe.execute(), strict=True)
                    if raw is not None and float(raw) > 0}
        loads = {}
        for queue in names:
            status, limit = per_queue[queue], limits.get(queue, QueueLimit())
            loads[queue] = QueueLoad(
                running=status.running, waiting=status.waiting, held=status.held, paused=status.paused,
                limit=limit, average_run_seconds=averages.get(limit.actor or ""))
        return desired_replicas(loads, threads=threads, minimum=minimum, maximum=maximum,
                                default_run_seconds=self.settings.autoscale_default_run_seconds)

    def oldest_waiting_age(self, queue: str) -> float:
        """Seconds the message at the head of ``queue`` has waited (0 when none)."""
        return self._oldest_waiting_age(queue, time.time())

    def _question_jobs(self, per_queue: dict[str, QueueStatus]) -> WorkloadStatus:
        """Running and waiting messages of the three stages; completed and failed *jobs*.

        A document passes through three (or five) stage messages: counting them would show one
        job as three completions, so finished jobs come from the job records' counts.
        """
        completed, failed = self.stats.finished_jobs("questions")
        workload = _workload(per_queue[q] for q in QUESTION_QUEUES)
        return workload.model_copy(update={"completed": completed, "failed": failed})

    def _read_keys(
        self, queues: Sequence[str]
    ) -> tuple[dict[str, tuple[int, int, int, int]], dict[str, float | None], int]:
        """Dramatiq's queue keys, our last-start marks and the restart counter, in one round trip.

        Per queue: ready (LLEN), in Dramatiq's delay queue, in the due set, dead-lettered.
        """
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(self.keys.queue(queue))
            pipe.hlen(self.keys.delayed_messages(queue))
            pipe.zcard(self.keys.due(queue))
            pipe.zcard(self.keys.dead_letters(queue))
            pipe.get(self.keys.last_start(queue))
        pipe.get(self.keys.restarts)
        values = pipe.execute()
        counts, last_starts = {}, {}
        for index, queue in enumerate(queues):
            waiting, delayed, due, dead, last = values[index * 5: index * 5 + 5]
            counts[queue] = (int(waiting), int(delayed), int(due), int(dead))
            last_starts[queue] = float(last) if last is not None else None
        return counts, last_starts, int(values[-1] or 0)

    def _delayed_reasons(self, counts: dict[str, tuple[int, int, int, int]]) -> dict[str, dict[str, int]]:
        """Per queue, why its delayed messages wait, read from the options of each one in the
        due set (the ``REASON_SAMPLE`` due soonest; the rest count as 'unknown')."""
        reasons: dict[str, dict[str, int]] = {queue: {} for queue in counts}
        for queue, (_, dramatiq_delayed, _, _) in counts.items():
            if dramatiq_delayed:
                reasons[queue]["dramatiq delay queue"] = dramatiq_delayed
        queues = [queue for queue, (_, _, due, _) in counts.items() if due]
        if not queues:
            return reasons
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.zrange(self.keys.due(queue), 0, REASON_SAMPLE - 1)
        sampled = dict(zip(queues, pipe.execute(), strict=True))
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            if sampled[queue]:
                pipe.hmget(self.keys.messages(queue), sampled[queue])
        data = iter(pipe.execute())
        for queue in queues:
            found = reasons[queue]
            for raw in next(data) if sampled[queue] else []:
                reason = delay_reason(raw)
                found[reason] = found.get(reason, 0) + 1
            if rest := counts[queue][2] - len(sampled[queue]):
                found["unknown"] = found.get("unknown", 0) + rest
        return reasons

    def _held(self) -> dict[str, HeldMessages]:
        """Per queue, the messages waiting in its actors' cap waiting rooms, by priority and by
        tenant (the tenants with the most first, at most ``TOP_TENANTS``; ids, never names)."""
        index = self.client.hgetall(self.keys.cap_waiting_index)
        entries = [entry.decode().split(" ") for entry in index.values()]
        pipe = self.client.pipeline(transaction=False)
        for key, fields in zip(index, entries, strict=True):
            pipe.zcard(key)
            pipe.hgetall(fields[1])  # the actor's stats: counts per priority and tenant
        values = pipe.execute()
        held: dict[str, HeldMessages] = {}
        for number, fields in enumerate(entries):
            count, stats = values[2 * number], values[2 * number + 1]
            queue = held.setdefault(fields[-1], HeldMessages())
            queue.count += int(count)
            for raw_field, raw_value in stats.items():
                field, value = raw_field.decode(), int(raw_value)
                if field.startswith("waiting-priority:"):
                    name = field.removeprefix("waiting-priority:")
                    queue.by_priority[name] = queue.by_priority.get(name, 0) + value
                elif field.startswith("waiting-tenant:"):
                    name = field.removeprefix("waiting-tenant:") or "(none)"
                    queue.by_tenant[name] = queue.by_tenant.get(name, 0) + value
        for queue in held.values():
            top = sorted(queue.by_tenant.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_TENANTS]
            queue.tenants, queue.by_tenant = len(queue.by_tenant), dict(top)
        return held

    def _health_reasons(self, per_queue: dict[str, QueueStatus], workers: list[WorkerInfo],
                        now: float) -> list[str]:
        """Unhealthy when a queue with work has no live consumer, or waiting work does not start."""
        reasons = []
        for queue, status in per_queue.items():
            disabled = queue == FORM_RESPONSE and not self.enable_form_response_worker
            if status.consumers == 0:
                if (status.waiting or status.delayed or status.held) and not disabled:
                    reasons.append(f"no live worker consumes queue {queue!r} "
                                   f"({status.waiting + status.held} waiting, "
                                   f"{status.delayed} delayed)")
                continue
            if status.waiting and not status.paused:
                booted = max(w.started_at for w in workers if consumes(w, queue))
                idle = now - max(status.last_started_at or 0.0, booted)
                limit = self.settings.stuck_after
                if idle > limit and self._oldest_waiting_age(queue, now) > limit:
                    reasons.append(f"queue {queue!r} is stuck: {status.waiting} waiting, "
                                   f"nothing started for {idle:.0f} s")
        return reasons

    def _stranded_reasons(self, stranded: dict[str, Stranded]) -> list[str]:
        """Messages held by gone workers past the time a live worker's recovery takes them back.

        A live worker recovers them within a second of ``HEARTBEAT_TIMEOUT`` (or, right after a
        Redis outage, one more ``HEARTBEAT_TIMEOUT``); longer means no live worker runs a pass.
        """
        overdue = 2 * self.settings.heartbeat_timeout + 5
        return [f"{s.count} message(s) of queue {s.queue!r} are held by worker processes gone "
                f"for {s.dead_for_s:.0f} s and no live worker has put them back"
                for s in stranded.values() if s.dead_for_s > overdue]

    def _oldest_waiting_age(self, queue: str, now: float) -> float:
        """Seconds since the message at the head of the queue was enqueued (0 when none).

        Work that just arrived on a long-idle queue is not stuck: a worker takes it within a second.
        """
        head = self.client.lindex(self.keys.queue(queue), 0)
        raw = self.client.hget(self.keys.messages(queue), head) if head is not None else None
        if raw is None:
            return 0.0
        try:
            return now - int(json.loads(raw)["message_timestamp"]) / 1000
        except (ValueError, KeyError, TypeError):
            return 0.0


def consumes(worker: WorkerInfo, queue: str) -> bool:
    """True when this live process takes work from ``queue`` (a draining one takes none)."""
    return not worker.draining and queue in {name.removesuffix(DELAY_SUFFIX) for name in worker.queues}


@dataclass
class HeldMessages:
    """What waits in the cap waiting rooms of one queue's actors."""

    count: int = 0
    by_priority: dict[str, int] = field(default_factory=dict)
    by_tenant: dict[str, int] = field(default_factory=dict)
    tenants: int = 0


def delay_reason(raw: bytes | None) -> str:
    """Why a message of the due set waits, from its options (see QueueStatus.delayed_by_reason)."""
    try:
        options = json.loads(raw)["options"] if raw is not None else None
    except (ValueError, KeyError, TypeError):
        options = None
    if not isinstance(options, dict):
        return "unknown"
    if RATE_LIMIT_RESERVATION in options:
        return "rate limit"
    if int(options.get("retries") or 0) > 0:
        return "retry"
    return "scheduled"


def _workload(queues: Iterable[QueueStatus]) -> WorkloadStatus:
    statuses = list(queues)
    by_reason: dict[str, int] = {}
    for status in statuses:
        for reason, count in status.delayed_by_reason.items():
            by_reason[reason] = by_reason.get(reason, 0) + count
    return WorkloadStatus(
        active=sum(s.running for s in statuses),
        waiting=sum(s.waiting + s.held for s in statuses),
        ready=sum(s.waiting for s in statuses),
        held=sum(s.held for s in statuses),
        delayed=sum(s.delayed for s in statuses),
        delayed_by_reason=dict(sorted(by_reason.items())),
        completed=sum(s.completed for s in statuses),
        failed=sum(s.failed for s in statuses),
    )


def redis_problem(exc: Exception, client: redis.Redis | None = None) -> str:
    """What to say when Redis failed: where (with ``client``), never the URL's password."""
    if isinstance(exc, RedisUnavailable):
        return str(exc)
    return describe_redis_problem(exc, client)
