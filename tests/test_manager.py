"""The worker manager: status, health, pause/resume and restart, true for every worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import redis

from gabay.cluster.restarts import RestartWatcher
from gabay.errors import RedisUnavailable, UnknownQueue
from gabay.ops.manager import WorkerManager
from gabay.queues import FORM_RESPONSE, GENERATION, RETRIEVAL, VALIDATION
from gabay.settings import Settings
from tests.support import manager_actors as actors
from tests.support.polling import wait_for
from tests.support.unchecked import enqueue_unchecked

MODULES = ("tests.support.manager_actors",)


@pytest.fixture
def manager(redis_client: redis.Redis, settings: Settings) -> WorkerManager:
    return WorkerManager(settings, redis_client)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the gabay command in a separate process, as an operator would."""
    return subprocess.run([sys.executable, "-m", "gabay.cli", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_status_counts_waiting_delayed_and_missing_consumers_without_any_worker(
    manager: WorkerManager, broker
) -> None:
    for i in range(3):
        actors.manager_succeed.send(f"ok{i}")
    actors.manager_fail.send("bad")
    actors.manager_succeed.send_with_options(args=("later",), delay=600_000)
    actors.manager_feedback.send("fb")

    status = manager.get_status()

    assert status.per_queue[GENERATION].waiting == 4
    assert status.per_queue[GENERATION].delayed == 1
    assert status.per_queue[FORM_RESPONSE].waiting == 1
    assert status.queues.waiting == 4 and status.form_response_worker.waiting == 1
    assert status.workers.worker_count == 0 and not status.workers.is_running
    assert status.healthy is False
    assert any("'generation'" in r and "4 waiting, 1 delayed" in r for r in status.reasons)
    assert any(f"'{FORM_RESPONSE}'" in r for r in status.reasons)
    assert status.model_dump()["workers"].keys() == {"is_running", "worker_count", "concurrency"}


def test_an_idle_cluster_without_work_is_healthy(manager: WorkerManager) -> None:
    status = manager.get_status()
    assert status.healthy and status.reasons == [] and status.redis_reachable


def test_unreachable_redis_gives_healthy_false_with_the_reason_instead_of_raising(
    settings: Settings,
) -> None:
    closed = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    manager = WorkerManager(settings, closed)
    status = manager.get_status()
    assert not status.healthy and not status.redis_reachable
    assert status.reasons == ["Redis does not answer at 127.0.0.1:1: ConnectionError"]
    with pytest.raises(RedisUnavailable):
        manager.pause_queues([GENERATION])


def test_unknown_queue_names_are_refused_before_anything_is_written(
    manager: WorkerManager, redis_client: redis.Redis
) -> None:
    with pytest.raises(UnknownQueue, match="'nope'"):
        manager.pause_queues([GENERATION, "nope"])
    assert manager.get_status().paused_queues == []


def test_pause_and_resume_flags_are_visible_from_any_process(manager: WorkerManager,
                                                              settings: Settings) -> None:
    assert manager.pause_queues([GENERATION]) == {GENERATION}
    other = WorkerManager(settings, redis.Redis.from_url(os.environ["REDIS_URL"]))
    status = other.get_status()
    assert status.per_queue[GENERATION].paused and status.paused_queues == [GENERATION]
    assert other.resume_queues() == set()
    assert manager.get_status().paused_queues == []


def test_worker_processes_mark_the_last_start_of_each_queue(
    start_workers, redis_client: redis.Redis, settings: Settings, manager: WorkerManager
) -> None:
    start_workers(processes=1, threads=2, modules=MODULES)
    actors.manager_succeed.send("one")
    wait_for(lambda: redis_client.llen(actors.record_key("succeeded")) == 1, timeout=30,
             message="the job to run")
    assert redis_client.get(settings.keys.last_start(GENERATION)) is not None
    assert manager.get_status().per_queue[GENERATION].last_started_at is not None
    assert manager.get_status().per_queue[VALIDATION].last_started_at is None


def test_status_numbers_match_the_work_queued_running_completed_and_failed(
    start_workers, redis_client: redis.Redis, manager: WorkerManager
) -> None:
    for i in range(3):
        actors.manager_succeed.send(f"ok{i}")
    for i in range(2):
        actors.manager_fail.send(f"bad{i}")
    actors.manager_succeed.send_with_options(args=("later",), delay=600_000)
    actors.manager_feedback.send("fb")
    start_workers(processes=2, threads=3, modules=MODULES)  # 3 threads: one process can run 3 holds

    def settled():
        status = manager.get_status()
        return status if status.per_queue[GENERATION].completed == 3 \
            and status.per_queue[GENERATION].failed == 2 \
            and status.form_response_worker.completed == 1 and status.workers.worker_count == 2 \
            else None

    status = wait_for(settled, timeout=60, message="the mix to be processed")
    generation = status.per_queue[GENERATION]
    assert (generation.waiting, generation.delayed, generation.dead_lettered) == (0, 1, 2)
    assert (generation.completed, generation.failed, generation.running) == (3, 2, 0)
    assert status.workers.worker_count == 2 and status.workers.concurrency == 6
    assert status.workers.is_running and status.form_response_worker.is_running
    assert status.healthy, status.reasons

    for i in range(3):
        actors.manager_hold.send(f"h{i}")
    wait_for(lambda: redis_client.llen(actors.record_key("held")) == 3, timeout=30, message="3 holds")
    # Running jobs are published by each process every FLUSH_EVERY (0.25 s), not at the start.
    running = wait_for(lambda: (s := manager.get_status()).per_queue[RETRIEVAL].running == 3 and s,
                       timeout=5, message="the 3 holds to show as running")
    assert running.per_queue[RETRIEVAL].running == 3 and running.queues.active == 3
    redis_client.set(actors.gate_key(), "1")
    done = wait_for(lambda: (s := manager.get_status()).per_queue[RETRIEVAL].completed == 3 and s,
                    timeout=30, message="the holds to complete")
    assert done.queues.active == 0
    assert (done.per_queue[RETRIEVAL].completed, done.per_queue[GENERATION].completed) == (3, 3)


def test_question_generation_counts_finished_documents_not_stage_messages(
    start_workers, manager: WorkerManager
) -> None:
    from gabay.actors.questions import generate_questions, retrieve_passages

    start_workers(processes=1, threads=2)
    text = "# Water\n\nEvaporation is the change of liquid water into water vapour. " * 3
    request = {"document": {"id": "water", "title": "Water", "text": text}, "count": 1,
               "question_types": ["true_false"]}
    for n in range(2):
        generate_questions.send({**request, "request_id": f"doc-{n}"})
    # invalid, and enqueued without the check of send(): it reaches a worker
    enqueue_unchecked(retrieve_passages, {**request, "count": 500}, "bad-doc")

    def finished():  # stage counters are published every 0.25 s, job counts at once
        status = manager.get_status()
        published = status.per_queue[VALIDATION].completed + status.per_queue[RETRIEVAL].failed
        return status if published == 3 else None

    status = wait_for(finished, timeout=60, message="two documents done and one failed")
    assert (status.queues.completed, status.queues.failed) == (2, 1)
    assert status.per_queue[VALIDATION].completed == 2  # each document: 3 stage messages, 1 job
    assert status.per_queue[RETRIEVAL].completed == 2 and status.per_queue[RETRIEVAL].failed == 1
    assert sum(status.per_queue[q].completed for q in (RETRIEVAL, GENERATION, VALIDATION)) == 6


def test_two_processes_count_as_two_and_a_killed_one_drops_out(
    start_workers, manager: WorkerManager, settings: Settings
) -> None:
    survivor = start_workers(processes=1, threads=2, modules=MODULES)
    doomed = start_workers(processes=1, threads=3, modules=MODULES)
    status = wait_for(lambda: (s := manager.get_status()).workers.worker_count == 2 and s,
                      timeout=30, message="two registered processes")
    assert status.workers.concurrency == 5 and status.uptime > 0
    assert {w.pid for w in manager.workers()} == {*survivor.child_pids(), *doomed.child_pids()}

    doomed.kill()
    status = wait_for(lambda: (s := manager.get_status()).workers.worker_count == 1 and s,
                      timeout=settings.heartbeat_timeout + 20, message="the killed process to drop out")
    assert status.workers.concurrency == 2


def test_a_queue_whose_waiting_work_does_not_start_is_reported_stuck(
    start_workers, redis_client: redis.Redis, settings: Settings
) -> None:
    stuck_after = 3.0
    manager = WorkerManager(settings.model_copy(update={"stuck_after": stuck_after}), redis_client)
    start_workers(processes=1, threads=1, modules=MODULES)
    actors.manager_hold.send("busy")
    wait_for(lambda: redis_client.llen(actors.record_key("held")) == 1, timeout=30, message="the hold")
    last_start = manager.get_status().per_queue[RETRIEVAL].last_started_at
    wait_for(lambda: time.time() - last_start > stuck_after + 0.5, timeout=30, interval=0.1,
             message="the queue to be idle for longer than stuck_after")
    for i in range(4):  # more than the prefetch of one thread (2): some stay waiting
        actors.manager_hold.send(f"queued{i}")
    fresh = manager.get_status()  # work that just arrived is not stuck
    assert fresh.per_queue[RETRIEVAL].waiting > 0 and fresh.healthy, fresh.reasons

    status = wait_for(lambda: (s := manager.get_status()).reasons and s, timeout=30,
                      message="the stuck queue to be reported")
    assert not status.healthy
    assert any("'retrieval' is stuck" in r for r in status.reasons), status.reasons
    redis_client.set(actors.gate_key(), "1")
    wait_for(lambda: manager.get_status().healthy, timeout=30, message="health to come back")


def test_with_the_form_response_worker_disabled_its_messages_wait_and_nothing_is_lost(
    start_workers, redis_client: redis.Redis, settings: Settings
) -> None:
    start_workers(processes=1, threads=2, modules=MODULES,
                  env={"ENABLE_FORM_RESPONSE_WORKER": "false"})
    actors.manager_feedback.send("waits")
    actors.manager_succeed.send("runs")
    actors.manager_succeed.send("runs-too")
    wait_for(lambda: redis_client.llen(actors.record_key("succeeded")) == 2, timeout=30,
             message="the generation jobs")
    assert redis_client.llen(settings.keys.queue(FORM_RESPONSE)) == 1
    assert redis_client.llen(actors.record_key("feedback")) == 0

    manager = WorkerManager(settings, redis_client, enable_form_response_worker=False)
    status = manager.get_status()
    assert status.form_response_worker.waiting == 1
    assert not status.form_response_worker.is_running and not status.form_response_worker.enabled
    assert status.healthy, status.reasons


def test_pause_from_the_cli_holds_work_in_every_process_and_resume_releases_it(
    start_workers, redis_client: redis.Redis, worker_env: dict[str, str], manager: WorkerManager
) -> None:
    workers = start_workers(processes=2, threads=2, modules=MODULES)
    assert cli(worker_env, "pause", GENERATION).returncode == 0
    # Each process reads the flags twice a second; wait until both logged the change.
    wait_for(lambda: workers.log().count("paused: generation") >= 2, timeout=30,
             message="both processes to see the pause")
    for i in range(4):
        actors.manager_succeed.send(f"p{i}")
    actors.manager_hold.send("other-queue")  # retrieval is not paused
    redis_client.set(actors.gate_key(), "1")
    wait_for(lambda: redis_client.llen(actors.record_key("released")) == 1, timeout=30,
             message="the unpaused queue to work")
    assert redis_client.llen(actors.record_key("succeeded")) == 0
    assert manager.get_status().per_queue[GENERATION].paused

    assert cli(worker_env, "resume", GENERATION).returncode == 0
    wait_for(lambda: redis_client.llen(actors.record_key("succeeded")) == 4, timeout=60,
             message="the paused work to run after resume")


def test_restart_from_another_process_restarts_every_worker_process_once(
    start_workers, worker_env: dict[str, str], manager: WorkerManager, broker,
    redis_client: redis.Redis,
) -> None:
    # Dramatiq's reload executes the `python` found in PATH: this interpreter's, as in a venv.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])
    workers = start_workers(processes=2, threads=1, modules=MODULES, env={"PATH": path})
    before = set(workers.child_pids())
    assert len(before) == 2

    result = cli(worker_env, "restart")
    assert result.returncode == 0, result.stderr
    assert "restart 1 requested" in result.stdout

    def replaced() -> bool:
        now = set(workers.child_pids())
        return len(now) == 2 and not now & before

    wait_for(replaced, timeout=90, interval=0.2, message="new worker processes")
    replaced_ms = int(time.time() * 1000)
    assert workers.popen.poll() is None  # the same dramatiq main process, re-executed
    assert manager.get_status().restart_attempts == 1
    assert workers.log().count("Restart 1 requested") == 1  # one SIGHUP per main process

    middle = set(workers.child_pids())
    heartbeats = broker.settings.keys.heartbeats
    wait_for(lambda: redis_client.zcount(heartbeats, replaced_ms, "+inf") >= 2, timeout=60,
             message="the new processes to boot")
    manager.restart()
    wait_for(lambda: len(now := set(workers.child_pids())) == 2 and not now & middle, timeout=90,
             interval=0.2, message="a second restart")
    assert manager.get_status().restart_attempts == 2
    assert workers.log().count("Restart 2 requested") == 1


def test_a_process_not_started_by_dramatiq_never_signals_its_parent(
    redis_client: redis.Redis, settings: Settings, manager: WorkerManager
) -> None:
    watcher = RestartWatcher(redis_client, settings.keys, can_signal=False)
    assert manager.restart() == 1
    assert watcher.check() is False  # in-process workers (tests, scripts): the parent is no dramatiq
    assert watcher.generation == 1 and manager.get_status().restart_attempts == 1
