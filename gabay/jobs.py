"""Job records in Redis: what the platform reads back with ``gabay.jobs.get(job_id)``.

One record per job (a question request or a submission), keyed by job id, so that a second run of
a message overwrites instead of appending: status, current stage, per-stage timings, every LLM
call with its tokens and cost, and the result or the error. Records expire after ``JOB_TTL``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import redis
from pydantic import BaseModel, Field

from gabay.cluster.connection import connect
from gabay.cluster.stats import FINISHED, count_finished
from gabay.errors import GabayError, JobNotFound
from gabay.settings import Settings, load_settings

RECENT_JOBS_KEPT = 1000
POLL_SECONDS = 0.1


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class LLMCall(BaseModel):
    """One call to a language model (or the offline provider), with its cost."""

    stage: str
    provider: str
    model: str
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    duration_ms: float = 0.0
    ok: bool = True
    error: str | None = None


class StageTiming(BaseModel):
    started_at: float
    finished_at: float | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


class JobRecord(BaseModel):
    """Everything known about one job."""

    id: str
    kind: str
    status: JobStatus = JobStatus.QUEUED
    stage: str | None = None
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    stages: dict[str, StageTiming] = Field(default_factory=dict)
    calls: list[LLMCall] = Field(default_factory=list)
    result: dict[str, Any] | None = None
    error: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return sum(c.prompt_tokens + c.completion_tokens for c in self.calls)

    @property
    def cost_usd(self) -> float:
        return round(sum(c.cost_usd for c in self.calls), 8)


class JobStore:
    """Reads and writes job records; safe to use from any process and thread."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.keys = settings.keys

    def key(self, job_id: str) -> str:
        return self.keys.job(job_id)

    def create(self, kind: str, job_id: str | None = None, **details: Any) -> JobRecord:
        """Create a queued record, or return the existing one (enqueueing twice is harmless)."""
        return self.create_or_find(kind, job_id, **details)[0]

    def create_or_find(self, kind: str, job_id: str | None = None,
                       **details: Any) -> tuple[JobRecord, bool]:
        """The new queued record (True), or the one that exists already (False); atomic."""
        record = JobRecord(id=job_id or uuid.uuid4().hex, kind=kind, details=details)
        created = self.client.set(self.key(record.id), record.model_dump_json(),
                                  ex=self.settings.job_ttl, nx=True)
        if not created:
            return self.get(record.id), False
        recent = self.keys.recent_jobs
        pipe = self.client.pipeline()
        pipe.zadd(recent, {record.id: record.created_at})
        pipe.zremrangebyrank(recent, 0, -RECENT_JOBS_KEPT - 1)
        pipe.execute()
        return record, True

    def reopen(self, job_id: str, **details: Any) -> JobRecord:
        """Make a finished job queued again, as new (what ``regenerate`` asks for)."""
        def change(record: JobRecord) -> None:
            record.status = JobStatus.QUEUED
            record.stage, record.result, record.error = None, None, None
            record.stages, record.calls = {}, []
            record.details = dict(details)

        return self.update(job_id, change)

    def get(self, job_id: str) -> JobRecord:
        data = self.client.get(self.key(job_id))
        if data is None:
            raise JobNotFound(f"no job {job_id!r} (unknown or expired)")
        return JobRecord.model_validate_json(data)

    def wait(self, job_id: str, timeout: float,
             on_poll: Callable[[JobRecord], None] | None = None) -> JobRecord:
        """Poll the record until the job succeeded or failed (``on_poll`` sees every read).

        Raises GabayError naming the job when it is not finished after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            record = self.get(job_id)
            if on_poll is not None:
                on_poll(record)
            if record.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
                return record
            if time.monotonic() > deadline:
                raise GabayError(f"job {job_id} not finished after {timeout:g} s "
                                 f"(status {record.status}); follow it with: gabay job {job_id}")
            time.sleep(POLL_SECONDS)

    def recent(self, limit: int = 50) -> list[JobRecord]:
        """The newest jobs first (those whose records have not expired)."""
        ids = self.client.zrevrange(self.keys.recent_jobs, 0, limit - 1)
        records = self.client.mget([self.key(i.decode()) for i in ids]) if ids else []
        return [JobRecord.model_validate_json(r) for r in records if r is not None]

    def update(self, job_id: str, change: Callable[[JobRecord], None]) -> JobRecord:
        """Apply ``change`` to the record atomically (optimistic locking, retried on conflict).

        A change that makes the job succeeded or failed also counts it, once per transition, in
        the cluster-wide finished counts (see ``QueueStats.finished_jobs``).
        """
        key = self.key(job_id)
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    data = pipe.get(key)
                    if data is None:
                        raise JobNotFound(f"no job {job_id!r} (unknown or expired)")
                    record = JobRecord.model_validate_json(data)
                    before = record.status
                    change(record)
                    record.updated_at = time.time()
                    pipe.multi()
                    pipe.set(key, record.model_dump_json(), ex=self.settings.job_ttl)
                    if record.status != before and record.status in FINISHED:
                        count_finished(pipe, self.keys, record.kind, record.status)
                    pipe.execute()
                    return record
                except redis.WatchError:
                    continue

    def stage_started(self, job_id: str, stage: str) -> JobRecord:
        def change(record: JobRecord) -> None:
            record.status = JobStatus.RUNNING
            record.stage = stage
            record.stages[stage] = StageTiming(started_at=time.time())

        return self.update(job_id, change)

    def stage_finished(self, job_id: str, stage: str) -> JobRecord:
        def change(record: JobRecord) -> None:
            timing = record.stages.setdefault(stage, StageTiming(started_at=time.time()))
            timing.finished_at = time.time()

        return self.update(job_id, change)

    def add_call(self, job_id: str, call: LLMCall) -> JobRecord:
        """Record an LLM call on the job and in the cluster-wide totals."""
        totals = self.keys.llm_totals
        prefix = f"{call.provider}:{call.model}"
        pipe = self.client.pipeline()
        pipe.hincrby(totals, f"{prefix}:calls", 1)
        pipe.hincrby(totals, f"{prefix}:prompt_tokens", call.prompt_tokens)
        pipe.hincrby(totals, f"{prefix}:completion_tokens", call.completion_tokens)
        pipe.hincrbyfloat(totals, f"{prefix}:cost_usd", call.cost_usd)
        pipe.execute()
        return self.update(job_id, lambda record: record.calls.append(call))

    def succeed(self, job_id: str, result: dict[str, Any], **details: Any) -> JobRecord:
        def change(record: JobRecord) -> None:
            record.status = JobStatus.SUCCEEDED
            record.result = result
            record.error = None
            record.details.update(details)

        return self.update(job_id, change)

    def fail(self, job_id: str, error: str, **details: Any) -> JobRecord:
        def change(record: JobRecord) -> None:
            record.status = JobStatus.FAILED
            record.error = error
            record.details.update(details)

        return self.update(job_id, change)

    def totals(self) -> dict[str, dict[str, float]]:
        """Cluster-wide LLM usage per ``provider:model``: calls, tokens and cost."""
        raw = self.client.hgetall(self.keys.llm_totals)
        totals: dict[str, dict[str, float]] = {}
        for field, value in raw.items():
            name, _, metric = field.decode().rpartition(":")
            totals.setdefault(name, {})[metric] = float(value)
        return totals


def get(job_id: str, store: JobStore | None = None) -> JobRecord:
    """Read a job record from any process (builds a store from the settings when none is given)."""
    if store is None:
        settings = load_settings()
        store = JobStore(connect(settings), settings)
    return store.get(job_id)
