"""Where the dashboard's numbers come from: the manager, the stats, the registry and the jobs.

All of them read Redis, so every number is cluster-wide (all processes, all hosts). The protocols
name exactly what the dashboard uses, so that the web layer depends on nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import redis

from gabay.cluster.registry import WorkerRegistry
from gabay.cluster.stats import QueueStats
from gabay.cluster.status import ClusterStatus
from gabay.jobs import JobStore
from gabay.ops.manager import WorkerManager
from gabay.schedules.status import leader_status, schedule_status
from gabay.settings import Settings


class Manager(Protocol):
    def get_status(self) -> ClusterStatus: ...
    def pause_queues(self, queues: list[str] | None = None) -> Any: ...
    def resume_queues(self, queues: list[str] | None = None) -> Any: ...
    def restart(self) -> Any: ...


class Stats(Protocol):
    def counters(self, queue: str) -> Any: ...
    def throughput(self, queue: str, minutes: int = 60) -> list[tuple[int, int, int]]: ...
    def recent_failures(self, limit: int = 20) -> list[Any]: ...


class Registry(Protocol):
    def workers(self) -> list[Any]: ...


class Schedules(Protocol):
    def status(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ScheduleSource:
    """The scheduled jobs as ``gabay schedules`` shows them, and the current leader."""

    settings: Settings
    client: redis.Redis

    def status(self) -> dict[str, Any]:
        return {"schedules": schedule_status(self.settings, self.client),
                "leader": leader_status(self.settings, self.client)}


@dataclass(frozen=True)
class Sources:
    """Everything the dashboard reads or acts on."""

    settings: Settings
    manager: Manager
    stats: Stats
    registry: Registry
    jobs: JobStore
    schedules: Schedules


def build_sources(settings: Settings, client: redis.Redis) -> Sources:
    """The real sources on this Redis client."""
    return Sources(
        settings=settings,
        manager=WorkerManager(settings, client),
        stats=QueueStats(client, settings),
        registry=WorkerRegistry(client, settings),
        jobs=JobStore(client, settings),
        schedules=ScheduleSource(settings, client),
    )
