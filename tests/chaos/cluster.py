"""A small cluster for fault tests and soaks: worker processes on a Redis of its own, a sender,
and what the actors recorded (see :mod:`tests.chaos.actors`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from gabay.settings import Settings
from tests.chaos.actors import QUEUE
from tests.chaos.redis_server import RedisServer
from tests.support.processes import WorkerProcess

MODULES = ("tests.chaos.actors",)


class Cluster:
    """Worker processes on ``server``, a sender, and the runs the actors recorded."""

    def __init__(self, server: RedisServer, settings: Settings, tmp_path: Path) -> None:
        self.server = server
        self.records = tmp_path / "records"
        self.records.mkdir()
        self.tmp_path = tmp_path
        self.client = server.client()
        self.keys = settings.keys
        self.sender = RedisBroker(client=self.client, namespace=self.keys.namespace, middleware=[])
        self.workers: list[WorkerProcess] = []

    def start_workers(self, *, processes: int = 1, threads: int = 4,
                      env: dict[str, str] | None = None,
                      queues: tuple[str, ...] = (QUEUE,)) -> WorkerProcess:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "REDIS_URL": self.server.url,
                    "GABAY_CHAOS_RECORDS": str(self.records), **(env or {})}
        log = self.tmp_path / f"workers-{len(self.workers)}.log"
        process = WorkerProcess(full_env, log, processes=processes, threads=threads,
                                queues=queues, modules=MODULES)
        self.workers.append(process)
        return process.start(self.client, self.keys.namespace)

    def send(self, actor: str, *args: Any, queue: str = QUEUE) -> None:
        """Enqueue with a plain Dramatiq broker, then wake the idle consumers as gabay's enqueue does."""
        self.sender.enqueue(dramatiq.Message(queue_name=queue, actor_name=actor, args=args,
                                             kwargs={}, options={}))
        self.client.publish(self.keys.wake(queue), "1")

    def hold(self, name: str) -> Path:
        """Create ``<records>/<name>.hold``: actors waiting on ``name`` wait until it is removed."""
        flag = self.records / f"{name}.hold"
        flag.touch()
        return flag

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        lines = [json.loads(line) for path in sorted(self.records.glob("*.jsonl"))
                 for line in path.read_text(encoding="utf-8").splitlines() if line]
        return [e for e in lines if event is None or e["event"] == event]

    def intervals(self, prefix: str = "") -> list[tuple[float, float]]:
        """(start, end) of every finished run whose token starts with ``prefix`` (host clock)."""
        starts = {(e["token"], e["pid"]): e["at"] for e in self.events("start")}
        return [(starts[(e["token"], e["pid"])], e["at"]) for e in self.events("end")
                if e["token"].startswith(prefix)]

    def logs(self) -> str:
        return "\n".join(w.log() for w in self.workers)

    def close(self) -> None:
        for process in self.workers:
            process.stop(timeout=30)
        self.client.close()
