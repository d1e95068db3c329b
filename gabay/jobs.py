"""Job records in Redis: what the platform reads back with ``gabay.jobs.get(job_id)``.

One record per job (a question request or a submission), keyed by job id, so that a second run of
a message overwrites instead of appending: status, current stage, per-stage timings, every LLM
call with its tokens and cost, the result or the error, and the delivery of its callback.
Records expire after ``JOB_TTL``.

The module functions :func:`get` and :func:`wait` read through one store per process
(:func:`shared_store`, built on first use from the settings: one connection pool, not a
connection per call). Code that has its settings or its Redis client builds a ``JobStore``
itself; typed results and the asyncio client are in :mod:`gabay.client`.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Literal

import redis
from pydantic import BaseModel, Field

from gabay.cluster import histograms
from gabay.cluster.connection import connect
from gabay.cluster.job_index import index_created, index_status_changed
from gabay.cluster.stats import FINISHED, count_finished
from gabay.errors import JobNotFinished, JobNotFound
from gabay.settings import Settings, load_settings

RECENT_JOBS_KEPT = 1000
#: ``wait`` polls first after this many seconds, then twice as long each time, up to the maximum.
POLL_SECONDS = 0.05
POLL_MAX_SECONDS = 1.0


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # -- operator console: a job an operator cancelled (gabay/middleware/cancellation.py) --
    CANCELLED = "cancelled"


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


class CallbackState(BaseModel):
    """The delivery of a job's callback: ``pending`` (retrying), ``delivered`` or ``failed`` (for good).

    ``last_error`` names the receiver's host and what went wrong, never the URL (it may carry a
    token).
    """

    state: Literal["pending", "delivered", "failed"] = "pending"
    attempts: int = 0
    last_error: str | None = None
    status_code: int | None = None
    updated_at: float = Field(default_factory=time.time)


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
    callback: CallbackState | None = None

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)

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
        index_created(pipe, self.keys, record.id, record.kind, record.status, record.created_at,
                      self.settings.job_ttl)  # the console's pages (gabay.cluster.job_index)
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

        Polls after 0.05 s, then twice as long each time up to 1 s (a quick job answers quickly,
        a long one costs a read a second). Raises JobNotFinished naming the job when it is not
        finished after ``timeout`` seconds, JobNotFound when there is no such job.
        """
        deadline = time.monotonic() + timeout
        pause = POLL_SECONDS
        while True:
            record = self.get(job_id)
            if on_poll is not None:
                on_poll(record)
            if record.finished:
                return record
            left = deadline - time.monotonic()
            if left <= 0:
                raise not_finished(record, timeout)
            time.sleep(min(pause, left))
            pause = min(pause * 2, POLL_MAX_SECONDS)

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
                    if record.status != before and record.status is JobStatus.CANCELLED:
                        count_finished(pipe, self.keys, record.kind, record.status)
                    index_status_changed(pipe, self.keys, record.id, before, record.status,
                                         record.created_at)
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
        # -- LLM spend and provider limits: the prompt cache's share per stage and provider --
        pipe.hincrby(totals, f"{prefix}:cached_tokens", call.cached_tokens)
        pipe.hincrby(self.keys.llm_cache_totals, f"{call.stage}:{call.provider}:prompt_tokens",
                     call.prompt_tokens)
        pipe.hincrby(self.keys.llm_cache_totals, f"{call.stage}:{call.provider}:cached_tokens",
                     call.cached_tokens)
        # -- metrics: the call's latency, in the same round trip --
        histograms.observe_into(pipe, self.keys, "llm_call_seconds", (call.provider, call.model),
                                call.duration_ms / 1000)
        pipe.execute()

        def append(record: JobRecord) -> None:
            record.calls.append(call)
            record.details["cached_share"] = cached_share(record.calls)

        return self.update(job_id, append)

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

    def cache_totals(self) -> dict[str, dict[str, dict[str, int]]]:
        """Cluster-wide prompt and cached tokens per stage and provider (``stage -> provider -> ...``)."""
        raw = self.client.hgetall(self.keys.llm_cache_totals)
        found: dict[str, dict[str, dict[str, int]]] = {}
        for field, value in raw.items():
            stage, provider, metric = field.decode().rsplit(":", 2)
            found.setdefault(stage, {}).setdefault(provider, {})[metric] = int(value)
        return found

    def totals(self) -> dict[str, dict[str, float]]:
        """Cluster-wide LLM usage per ``provider:model``: calls, tokens and cost."""
        raw = self.client.hgetall(self.keys.llm_totals)
        totals: dict[str, dict[str, float]] = {}
        for field, value in raw.items():
            name, _, metric = field.decode().rpartition(":")
            totals.setdefault(name, {})[metric] = float(value)
        return totals


def not_finished(record: JobRecord, timeout: float) -> JobNotFinished:
    return JobNotFinished(f"job {record.id} not finished after {timeout:g} s (status {record.status}); "
                          f"follow it with: gabay job {record.id}", record=record)


@functools.cache
def shared_store() -> JobStore:
    """This process's store, built on first use from the settings; every later call reuses it.

    One Redis connection pool per process, whichever thread reads. A test that changed the
    environment calls ``shared_store.cache_clear()``; code that has its own client passes a
    store instead.
    """
    settings = load_settings()
    return JobStore(connect(settings), settings)


def cached_share(calls: list[LLMCall]) -> dict[str, dict[str, float]]:
    """Share of prompt tokens read from the provider's cache, per stage and provider (paid calls)."""
    sums: dict[str, dict[str, list[int]]] = {}
    for call in calls:
        if call.prompt_tokens:
            pair = sums.setdefault(call.stage, {}).setdefault(call.provider, [0, 0])
            pair[0] += call.cached_tokens
            pair[1] += call.prompt_tokens
    return {stage: {provider: round(cached / prompt, 4) for provider, (cached, prompt) in by.items()}
            for stage, by in sums.items()}


def get(job_id: str, store: JobStore | None = None) -> JobRecord:
    """Read a job record from any process (through :func:`shared_store` when none is given)."""
    return (store or shared_store()).get(job_id)


def wait(job_id: str, timeout: float, store: JobStore | None = None) -> JobRecord:
    """The record once the job succeeded or failed (see :meth:`JobStore.wait`)."""
    return (store or shared_store()).wait(job_id, timeout)
