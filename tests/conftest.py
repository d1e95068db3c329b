"""Shared fixtures: a dedicated database on the real Redis, flushed around every test.

The database number comes from ``GABAY_TEST_REDIS_DB`` (default 15) so that parallel test runs
on one Redis do not disturb each other, minus the pytest-xdist worker's number (``bin/test`` runs
two test processes); it is never FLUSHALL.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

#: Under pytest-xdist each test process takes its own database: 15, 14, ... for gw0, gw1, ...
_XDIST_INDEX = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
TEST_DB = int(os.environ.get("GABAY_TEST_REDIS_DB", "15")) - _XDIST_INDEX
REDIS_URL = os.environ.get("GABAY_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{TEST_DB}")
DATA_DIR = Path(tempfile.mkdtemp(prefix="gabay-test-data-"))

# Set before gabay.actors is imported: the actors bind to the broker built from these settings.
for name in list(os.environ):
    if name.startswith(("OPENAI_", "DEEPSEEK_", "BREVO_", "REDIS_", "GABAY_", "EMAIL_")) and (
        name not in {"GABAY_TEST_REDIS_DB", "GABAY_TEST_REDIS_URL"}
    ):
        del os.environ[name]
os.environ["REDIS_URL"] = REDIS_URL
os.environ["GABAY_DATA_DIR"] = str(DATA_DIR)
os.environ["HEARTBEAT_TIMEOUT"] = "3"
os.environ["DRAIN_TIMEOUT"] = "5"  # test workers stopped at teardown don't wait 30 s for long jobs
# gabay's default schedules (nightly backup, digests, reports) stay out of tests that do not ask
os.environ["SCHEDULE_DEFAULTS"] = "false"

import gabay.actors  # noqa: E402
from gabay.broker import GabayBroker  # noqa: E402
from gabay.settings import Settings, load_settings  # noqa: E402
from tests.fakes import brevo_server  # noqa: E402
from tests.fakes.brevo_server import FakeBrevo  # noqa: E402
from tests.support.processes import WorkerProcess  # noqa: E402


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """The real Redis, on the test database, empty at the start and end of the test."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not running at {REDIS_URL}; start redis-server first")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def broker(redis_client: redis.Redis) -> GabayBroker:
    """The broker every gabay actor is bound to, on the flushed test database."""
    return gabay.actors.broker


@pytest.fixture
def brevo() -> Iterator[FakeBrevo]:
    """A fake Brevo on 127.0.0.1 (``brevo.base_url``, ``brevo.api_key``), stopped after the test."""
    with brevo_server.running() as server:
        yield server


@pytest.fixture
def worker_env(tmp_path: Path) -> dict[str, str]:
    """Environment for real worker processes: this test's Redis database and data directory."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def start_workers(worker_env: dict[str, str], tmp_path: Path, broker: GabayBroker,
                  redis_client: redis.Redis) -> Iterator:
    """Factory: ``start_workers(processes=2, threads=4, queues=(...))`` -> a running WorkerProcess."""
    started: list[WorkerProcess] = []

    def start(**kwargs: object) -> WorkerProcess:
        log = tmp_path / f"workers-{len(started)}.log"
        env = {**worker_env, **kwargs.pop("env", {})}  # type: ignore[dict-item]
        process = WorkerProcess(env, log, **kwargs)  # type: ignore[arg-type]
        started.append(process)
        return process.start(redis_client, broker.namespace)

    yield start
    for process in started:
        process.stop(timeout=30)
