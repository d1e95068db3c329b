"""Alerting across real processes: two ``gabay alerts check`` processes racing send one alert, and
a real worker process alerts on its own actors' failures and dead letters, then (its Redis stopped)
sends "Redis unreachable" by itself and "resolved" when Redis is back.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from gabay.alerts.missed_schedules import report_missed_schedule
from gabay.settings import load_settings
from tests.chaos.redis_server import RedisServer
from tests.fakes import webhook_server
from tests.fakes.webhook_server import FakeReceiver
from tests.support.actors import TEST_QUEUE
from tests.support.polling import wait_for
from tests.support.processes import LoggedProcess, WorkerProcess


@pytest.fixture
def hook() -> Iterator[FakeReceiver]:
    with webhook_server.webhook() as receiver:
        yield receiver


def test_two_processes_evaluating_at_once_send_one_alert(redis_client: redis.Redis, hook: FakeReceiver,
                                                         worker_env: dict[str, str], tmp_path: Path) -> None:
    report_missed_schedule(redis_client, load_settings().keys, "nightly-digest", "2026-12-03T02:00Z")
    env = {**worker_env, "ALERT_WEBHOOK_URL": hook.url}
    checks = [LoggedProcess([sys.executable, "-m", "gabay.cli", "alerts", "check"], env,
                            tmp_path / f"check-{i}.log").launch() for i in range(2)]
    for check in checks:
        assert check.wait(60) == 0, check.log()
        check.stop()
    assert hook.events() == [("firing", "missed_schedule")]
    assert "1 open incident(s)" in checks[0].log()


def test_a_worker_alerts_on_failures_and_on_losing_redis(hook: FakeReceiver, worker_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    client = server.client()
    namespace = load_settings().keys.namespace
    env = {**worker_env, "REDIS_URL": server.url, "ALERT_WEBHOOK_URL": hook.url,
           "ALERT_INTERVAL": "0.2", "ALERT_REDIS_DOWN_AFTER": "0.5", "ALERT_FAILURE_MIN_RUNS": "4",
           "ALERT_HTTP_RETRIES": "0"}
    worker = WorkerProcess(env, tmp_path / "worker.log", processes=1, threads=2)
    try:
        worker.start(client, namespace)
        broker = RedisBroker(client=client, namespace=namespace, middleware=[])
        broker.declare_queue(TEST_QUEUE)
        for args in [(), (), (), (), ("fine",)]:  # record() without its token raises TypeError
            broker.enqueue(Message(queue_name=TEST_QUEUE, actor_name="record", args=args, kwargs={},
                                   options={}))
        client.publish(load_settings().keys.wake(TEST_QUEUE), "1")  # as gabay's enqueue does

        def rules_fired() -> bool:
            return {rule for state, rule in hook.events() if state == "firing"} >= {
                "dead_letter", "failure_rate"}

        wait_for(rules_fired, timeout=20, interval=0.1, message="dead_letter and failure_rate alerts")
        bodies = {r["json"]["rule"]: r["json"] for r in hook.accepted()}
        assert bodies["dead_letter"]["subject"] == TEST_QUEUE
        assert bodies["dead_letter"]["details"]["count"] == 4
        assert {m["error"] for m in bodies["dead_letter"]["details"]["latest"]} == {"TypeError"}
        rate = bodies["failure_rate"]["details"]
        assert (rate["actor"], rate["failed"]) == ("record", 4) and rate["runs"] in (4, 5)

        server.stop()  # the worker's Redis is gone: only the worker itself can tell
        down = wait_for(lambda: [r["json"] for r in hook.accepted()
                                 if r["json"]["rule"] == "redis_unreachable"],
                        timeout=20, interval=0.1, message="the Redis unreachable alert")
        [alert] = down
        assert alert["event"] == "firing" and alert["severity"] == "critical"
        assert int(alert["source"].rpartition(":")[2]) in worker.child_pids()

        server.start()
        wait_for(lambda: ("resolved", "redis_unreachable") in hook.events(), timeout=20,
                 interval=0.1, message="the resolved alert once Redis answers")
        assert hook.events().count(("firing", "redis_unreachable")) == 1
    finally:
        worker.stop(timeout=30)
        client.close()
        server.stop()
