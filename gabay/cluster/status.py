"""The cluster status: typed models with the seed's shape, plus a per-queue breakdown.

Every number is cluster-wide (all worker processes on all hosts), read from Redis by
:class:`gabay.ops.manager.WorkerManager`. ``model_dump_json()`` is what ``gabay status --json`` prints
and what ``GET /api/status`` returns.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class QueueStatus(BaseModel):
    """One Dramatiq queue, cluster-wide."""

    name: str
    waiting: int = Field(0, description="ready, not yet fetched by any worker (LLEN)")
    delayed: int = Field(0, description="delayed sends, deferrals and retry backoffs waiting for "
                                        "their time (the due set, and Dramatiq's .DQ)")
    delayed_by_reason: dict[str, int] = Field(
        default_factory=dict, description="delayed messages per reason: 'rate limit' (deferred by "
        "a rate limit), 'retry' (a retry's backoff), 'scheduled' (sent with a delay), "
        "'dramatiq delay queue' (Dramatiq's .DQ), 'unknown' (past the first 1,000 of a queue)")
    held: int = Field(0, description="waiting in a capped actor's waiting room for a slot")
    held_by_priority: dict[str, int] = Field(default_factory=dict,
                                             description="held messages per priority")
    held_by_tenant: dict[str, int] = Field(
        default_factory=dict, description="held messages of the tenants with the most (ids only)")
    held_tenants: int = Field(0, description="tenants with held messages")
    running: int = Field(0, description="messages being processed right now")
    dead_lettered: int = Field(0, description="final failures kept in the dead-letter set (ZCARD .XQ)")
    stranded: int = Field(0, description="fetched by worker processes that are gone; back in the "
                                         "queue at the next recovery pass of a live worker")
    paused: bool = False
    completed: int = 0
    failed: int = 0
    consumers: int = Field(0, description="live worker processes that consume this queue")
    last_started_at: float | None = Field(None, description="epoch seconds of the last message start")
    desired_replicas: int = Field(0, description="worker processes this queue's work can use now, "
                                                 "within its cap and rate limit (gabay.cluster.autoscale)")


class WorkersStatus(BaseModel):
    """The live worker processes of the cluster."""

    is_running: bool = False
    worker_count: int = Field(0, description="live worker processes, all hosts")
    concurrency: int = Field(0, description="worker threads summed over the live processes")


class WorkloadStatus(BaseModel):
    """One worker type: running and waiting messages summed over its queues, completed and
    failed jobs (for question generation, finished documents, not stage messages).

    ``waiting`` (the seed's field) is what could start now: ``ready`` plus ``held``. Messages
    waiting for a time (a rate limit's deferral, a retry's backoff, a delayed send) are
    ``delayed``, counted apart, with their reasons.
    """

    active: int = 0
    waiting: int = Field(0, description="ready + held: messages that could start now")
    ready: int = Field(0, description="in the queues, not yet fetched by a worker")
    held: int = Field(0, description="in a capped actor's waiting room, waiting for a slot")
    delayed: int = Field(0, description="waiting for their time in the due set (rate-limit "
                                        "deferrals, retry backoffs, delayed sends)")
    delayed_by_reason: dict[str, int] = Field(default_factory=dict,
                                              description="delayed messages per reason")
    completed: int = 0
    failed: int = 0


class FormResponseWorkerStatus(WorkloadStatus):
    """The form-response (feedback) worker: its queue's counts and whether anything consumes it."""

    is_running: bool = False
    enabled: bool = True
    worker_count: int = 0


class ClusterStatus(BaseModel):
    """What ``WorkerManager.get_status()`` returns."""

    healthy: bool
    reasons: list[str] = Field(default_factory=list, description="why the cluster is unhealthy")
    redis_reachable: bool = True
    workers: WorkersStatus = Field(default_factory=WorkersStatus)
    queues: WorkloadStatus = Field(default_factory=WorkloadStatus, description="question generation")
    form_response_worker: FormResponseWorkerStatus = Field(default_factory=FormResponseWorkerStatus)
    restart_attempts: int = 0
    memory_recycles: int = Field(0, description="worker processes replaced for passing WORKER_MAX_MEMORY")
    uptime: float = Field(0.0, description="seconds since the oldest live worker process started")
    per_queue: dict[str, QueueStatus] = Field(default_factory=dict)
    paused_queues: list[str] = Field(default_factory=list)
    checked_at: float = Field(0.0, description="epoch seconds when this status was read")
    desired_replicas: int = Field(0, description="worker processes the whole work can use, within "
                                                 "AUTOSCALE_MIN_PROCESSES..AUTOSCALE_MAX_PROCESSES")

    @classmethod
    def unreachable(cls, reason: str, *, enabled: bool, checked_at: float) -> ClusterStatus:
        """The status when Redis does not answer: unhealthy, nothing known."""
        return cls(
            healthy=False,
            reasons=[reason],
            redis_reachable=False,
            form_response_worker=FormResponseWorkerStatus(enabled=enabled),
            checked_at=checked_at,
        )
