"""The worker manager: cluster status, health, pause/resume and restart, from any process.

Everything is read from and written to Redis, so the answers hold for every worker process on
every host, whichever process asks (the platform API, the CLI, the dashboard, a worker).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis

from gabay.cluster.connection import connect
from gabay.cluster.pause_flags import PauseFlags
from gabay.cluster.registry import WorkerInfo, WorkerRegistry
from gabay.cluster.restarts import request_restart
from gabay.cluster.status import ClusterStatus
from gabay.cluster.status_reader import StatusReader, redis_problem
from gabay.errors import RedisUnavailable
from gabay.queues import check_queue_names
from gabay.settings import Settings


class WorkerManager:
    """Cluster-wide status and control of the gabay workers."""

    def __init__(self, settings: Settings, client: redis.Redis, *,
                 enable_form_response_worker: bool | None = None) -> None:
        self.settings = settings
        self.client = client
        self.status_reader = StatusReader(settings, client,
                                          enable_form_response_worker=enable_form_response_worker)
        self.pause_flags = PauseFlags(client, settings)
        self.registry = WorkerRegistry(client, settings)

    @classmethod
    def connect(cls, settings: Settings) -> WorkerManager:
        """A manager on the Redis these settings resolve to."""
        return cls(settings, connect(settings))

    def get_status(self) -> ClusterStatus:
        """The cluster's status; never raises for an unreachable Redis (healthy false instead)."""
        return self.status_reader.read()

    def workers(self) -> list[WorkerInfo]:
        """The live worker processes of the cluster (from the registry)."""
        with _redis_errors():
            return self.registry.workers()

    def pause_queues(self, queues: Sequence[str] | None = None) -> set[str]:
        """Pause these queues (all when None or empty) in every worker; returns the paused set."""
        names = check_queue_names(list(queues)) if queues else None
        with _redis_errors():
            self.pause_flags.pause(names)
            return self.pause_flags.paused_queues()

    def resume_queues(self, queues: Sequence[str] | None = None) -> set[str]:
        """Resume these queues (all when None or empty); returns the queues still paused."""
        names = check_queue_names(list(queues)) if queues else None
        with _redis_errors():
            self.pause_flags.resume(names)
            return self.pause_flags.paused_queues()

    def restart(self) -> int:
        """Ask every worker process on every host to drain and restart; returns the generation.

        Each worker process watches the generation (``RestartOnRequest``) and one per dramatiq
        main process sends it SIGHUP: Dramatiq drains its workers as for SIGTERM, then
        re-executes itself.
        """
        with _redis_errors():
            return request_restart(self.client, self.settings.keys)


@contextmanager
def _redis_errors() -> Iterator[None]:
    """Turn redis-py errors into RedisUnavailable (without the URL, which may hold a password)."""
    try:
        yield
    except redis.RedisError as exc:
        raise RedisUnavailable(redis_problem(exc)) from exc
