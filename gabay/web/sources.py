"""Where the dashboard's numbers come from: the manager, the stats, the registry and the jobs.

All of them read Redis, so every number is cluster-wide (all processes, all hosts). The protocols
name exactly what the dashboard uses, so that the web layer depends on nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import redis

from gabay.cluster.autoscale_log import AutoscaleLog
from gabay.cluster.registry import WorkerRegistry
from gabay.cluster.stats import QueueStats
from gabay.cluster.status import ClusterStatus
from gabay.jobs import JobStore
from gabay.ops.manager import WorkerManager
from gabay.schedules.status import leader_status, schedule_status
from gabay.settings import Settings
from gabay.store.results import ResultsStore


class Manager(Protocol):
    def get_status(self) -> ClusterStatus: ...
    def pause_queues(self, queues: list[str] | None = None) -> Any: ...
    def resume_queues(self, queues: list[str] | None = None) -> Any: ...
    def restart(self) -> Any: ...


class Stats(Protocol):
    def counters(self, queue: str) -> Any: ...
    def throughput(self, queue: str, minutes: int = 60) -> list[tuple[int, int, int]]: ...
    def recent_failures(self, limit: int = 20) -> list[Any]: ...
    # -- metrics (gabay/web/metrics.py) --
    def raw_counters(self, queue: str) -> dict[str, int]: ...
    def histogram(self, name: str) -> list[Any]: ...
    def oldest_waiting(self, queues: list[str]) -> dict[str, float]: ...


class Registry(Protocol):
    def workers(self) -> list[Any]: ...


class Schedules(Protocol):
    def status(self) -> dict[str, Any]: ...
    def decisions(self, limit: int = 10) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class ScheduleSource:
    """The scheduled jobs as ``gabay schedules`` shows them, the current leader, and what the
    autoscaler decided (both are how the cluster schedules work in time)."""

    settings: Settings
    client: redis.Redis

    def status(self) -> dict[str, Any]:
        return {"schedules": schedule_status(self.settings, self.client),
                "leader": leader_status(self.settings, self.client)}

    def decisions(self, limit: int = 10) -> list[dict[str, Any]]:
        """The autoscaler's latest decisions, newest first (scheduling of processes)."""
        return AutoscaleLog(self.client, self.settings.keys).recent(limit=limit)


class Exams(Protocol):
    def exams(self) -> list[dict[str, Any]]: ...
    def analytics(self, form_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class ExamSource:
    """The exams of the results store and their latest analytics: ids and aggregates only."""

    results: ResultsStore

    def exams(self) -> list[dict[str, Any]]:
        return [{"form_id": e.form_id, "title": e.title, "subject": e.subject,
                 "submissions_stored": e.submissions_stored,
                 "submissions_counted": e.submissions_counted,
                 "computed_at": e.computed_at.isoformat() if e.computed_at else None}
                for e in self.results.exam_overviews()]

    def analytics(self, form_id: str) -> dict[str, Any] | None:
        stored = self.results.analytics(form_id)
        if stored is None:
            return None
        return {"form_id": stored.form_id, "submissions_counted": stored.submissions,
                "computed_at": stored.computed_at.isoformat(), "report": stored.report}


@dataclass(frozen=True)
class Sources:
    """Everything the dashboard reads or acts on."""

    settings: Settings
    manager: Manager
    stats: Stats
    registry: Registry
    jobs: JobStore
    schedules: Schedules
    exams: Exams


def build_sources(settings: Settings, client: redis.Redis) -> Sources:
    """The real sources on this Redis client."""
    return Sources(
        settings=settings,
        manager=WorkerManager(settings, client),
        stats=QueueStats(client, settings),
        registry=WorkerRegistry(client, settings),
        jobs=JobStore(client, settings),
        schedules=ScheduleSource(settings, client),
        exams=ExamSource(ResultsStore.from_settings(settings)),
    )
