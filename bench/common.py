"""What the benchmarks share: the two brokers compared, worker processes, a raw sender.

Workers start through the tests' helper (``tests.support.processes``), so that a benchmark boots
``dramatiq`` as the tests do and waits for the same heartbeats before it measures anything.
Each benchmark module is also its worker module: ``BENCH_MODE`` (``gabay`` or ``plain``) in the
workers' environment tells it which broker to declare its actors on.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Prometheus, default_middleware

from gabay.keys import Keys
from tests.support.processes import WorkerProcess

MODE = os.environ.get("BENCH_MODE")  # set in the workers' environment only
GABAY_NAMESPACE = Keys().namespace  # the workers run with the default key prefix
PLAIN_NAMESPACE = "bench-plain"
LOGS = Path(tempfile.gettempdir())


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (0 where there is no /proc).

    Not gabay.middleware.memory_limit.read_rss: this module is imported by the plain Dramatiq
    workers of the benchmarks too, which must not load gabay's middleware (it would count in
    their memory).
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def namespace_of(mode: str) -> str:
    return GABAY_NAMESPACE if mode == "gabay" else PLAIN_NAMESPACE


def plain_broker(redis_url: str) -> RedisBroker:
    """Plain Dramatiq: its default middleware minus Prometheus (an HTTP exporter per process)."""
    return RedisBroker(url=redis_url, namespace=PLAIN_NAMESPACE,
                       middleware=[m() for m in default_middleware if m is not Prometheus])


def modules(mode: str, module: str) -> tuple[str, ...]:
    """What ``dramatiq`` imports: gabay's broker first when measuring gabay, then ``module``."""
    return ("gabay.actors", module) if mode == "gabay" else (module,)


def worker_env(redis_url: str, **extra: str) -> dict[str, str]:
    """This environment without the caller's gabay, Redis and provider settings, on ``redis_url``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "DEEPSEEK_", "BREVO_", "REDIS_", "GABAY_", "EMAIL_"))}
    env.update(REDIS_URL=redis_url, GABAY_DATA_DIR=tempfile.mkdtemp(prefix="gabay-bench-"), **extra)
    return env


def workers(name: str, imports: tuple[str, ...], env: dict[str, str], *, processes: int,
            threads: int, queues: tuple[str, ...] = (),
            shutdown_timeout_ms: int | None = None) -> WorkerProcess:
    """``dramatiq *imports``, not started yet; its log: bench-<name>.log in LOGS."""
    return WorkerProcess(env, LOGS / f"bench-{name}.log", broker_module=imports[0],
                         modules=imports[1:], processes=processes, threads=threads, queues=queues,
                         shutdown_timeout_ms=shutdown_timeout_ms)


def enqueue(redis_url: str, namespace: str, queue: str, actor: str, args: Iterable[tuple]) -> None:
    """Write messages straight to Redis: no middleware, no actor declared in this process."""
    sender = RedisBroker(url=redis_url, namespace=namespace, middleware=[])
    for arguments in args:
        sender.enqueue(dramatiq.Message(queue_name=queue, actor_name=actor, args=arguments,
                                        kwargs={}, options={}))
    sender.client.close()
