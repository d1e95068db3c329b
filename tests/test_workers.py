"""The worker system across processes: send from here, process in a real dramatiq process."""

from __future__ import annotations

import signal
import time

import redis

from gabay.actors import probe
from gabay.broker import GabayBroker
from gabay.settings import Settings
from tests.support import actors
from tests.support.polling import wait_for


def test_a_message_sent_here_is_processed_by_a_separate_worker_process(
    start_workers, redis_client: redis.Redis, settings: Settings
) -> None:
    workers = start_workers(processes=1, threads=2)
    probe.send("t1")
    answer = wait_for(lambda: redis_client.get(settings.keys.probe("t1")), timeout=15,
                      message="the probe answer")
    host_pid = answer.decode().rsplit(":", 1)[1]
    assert int(host_pid) in workers.child_pids()


def test_killed_workers_messages_run_again_within_the_recovery_bound(
    start_workers, redis_client: redis.Redis, settings: Settings, broker: GabayBroker
) -> None:
    doomed = start_workers(processes=1, threads=1)
    actors.sleep_then_record.send("long", 30.0)
    started_key = settings.keys.test("started")
    wait_for(lambda: redis_client.llen(started_key) == 1, timeout=15, message="the first start")
    doomed.kill()
    killed_at = time.monotonic()

    start_workers(processes=1, threads=1)
    # HEARTBEAT_TIMEOUT is 3 s in the tests; recovery must follow within that plus ~1 s passes.
    wait_for(lambda: redis_client.llen(started_key) == 2, timeout=15,
             message="the message to start again on the survivor")
    assert time.monotonic() - killed_at < settings.heartbeat_timeout + 5


def test_sigterm_stops_the_workers_with_exit_code_zero(start_workers) -> None:
    workers = start_workers(processes=2, threads=1)
    workers.signal(signal.SIGTERM)
    assert workers.wait(timeout=60) == 0
