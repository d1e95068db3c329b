"""The embedded Redis: started by the first command, data kept on disk, found by other processes."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import gabay.cluster.connection
from gabay.broker import build_broker
from gabay.cluster.connection import connect, resolve_redis_url
from gabay.cluster.embedded_redis import EmbeddedRedis
from gabay.settings import load_settings
from tests.support.polling import wait_for
from tests.support.processes import ROOT, WorkerProcess


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "data")
    yield server
    server.stop()


def test_nothing_configured_and_nothing_local_starts_the_embedded_redis(
    embedded: EmbeddedRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.setattr(gabay.cluster.connection, "LOCAL_URL", "redis://127.0.0.1:1")
    settings = load_settings(gabay_data_dir=embedded.directory.parent)
    url = resolve_redis_url(settings)
    assert url.startswith(f"unix://{embedded.socket}")
    assert connect(settings, url).ping()


def test_configured_redis_never_starts_the_embedded_one(tmp_path: Path) -> None:
    settings = load_settings(gabay_data_dir=tmp_path)
    assert resolve_redis_url(settings) == os.environ["REDIS_URL"]
    assert not (tmp_path / "redis").exists()


def test_a_queued_message_survives_a_restart_of_the_embedded_server(
    embedded: EmbeddedRedis,
) -> None:
    settings = load_settings(gabay_data_dir=embedded.directory.parent, embedded_redis="always")
    broker = build_broker(settings, connect(settings))
    broker.declare_queue("system")
    from dramatiq import Message

    message = Message(queue_name="system", actor_name="probe", args=("persisted",), kwargs={},
                      options={})
    broker.enqueue(message)
    broker.client.close()

    assert embedded.stop()
    assert not embedded.is_running()
    embedded.ensure_running()

    client = redis.Redis.from_url(embedded.url)
    [stored] = client.hvals(f"{broker.namespace}:system.msgs")
    assert b"persisted" in stored


def test_a_second_process_and_dramatiq_workers_find_the_same_server(
    embedded: EmbeddedRedis, tmp_path: Path
) -> None:
    env = {**os.environ, "GABAY_DATA_DIR": str(embedded.directory.parent),
           "EMBEDDED_REDIS": "always", "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL")
    url = subprocess.run([sys.executable, "-m", "gabay.cli", "redis", "url"], env=env,
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    assert url == f"unix://{embedded.socket}?db=0"
    assert embedded.is_running()

    settings = load_settings(gabay_data_dir=embedded.directory.parent, embedded_redis="always")
    broker = build_broker(settings, connect(settings))
    workers = WorkerProcess(env, tmp_path / "workers.log", threads=1, modules=())
    try:
        workers.start(broker.client, broker.namespace)  # their heartbeats are on this server
        token = uuid.uuid4().hex
        broker.declare_queue("system")
        from dramatiq import Message

        broker.enqueue(Message(queue_name="system", actor_name="probe", args=(token,), kwargs={},
                               options={}))
        wait_for(lambda: broker.client.get(settings.keys.probe(token)), timeout=30,
                 message="the worker on the embedded Redis to answer")
    finally:
        workers.stop()
