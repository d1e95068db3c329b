"""Memory-based recycling (``gabay workers --max-memory``, ``WORKER_MAX_MEMORY``).

A real ``gabay workers`` whose worker process grows past the limit drains (its running jobs
finish, nothing is lost or run twice, no retry is used) and is replaced by a fresh process; the
recycle is counted in the status and logged. The check itself is tested against a Redis that does
not answer (no signal, tried again) and outside the dramatiq command (never signals).
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from gabay.cli import main
from gabay.cluster.registry import WorkerRegistry
from gabay.cluster.status_reader import StatusReader
from gabay.middleware.memory_limit import MemoryLimit, read_rss
from gabay.settings import Settings, load_settings
from tests.support import memory_actors
from tests.support.polling import wait_for
from tests.support.processes import LoggedProcess, child_pids

MB = 1024 * 1024


def test_sizes_are_read_like_pm2s_max_memory_restart() -> None:
    assert load_settings(worker_max_memory="1G").worker_max_memory == 1024**3
    assert load_settings(worker_max_memory="300M").worker_max_memory == 300 * MB
    assert load_settings(worker_max_memory="512k").worker_max_memory == 512 * 1024
    assert load_settings(worker_max_memory="1048576").worker_max_memory == MB
    assert load_settings().worker_max_memory is None


def test_a_wrong_size_is_one_clear_line(monkeypatch) -> None:
    monkeypatch.setenv("WORKER_MAX_MEMORY", "lots")
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 1
    assert "WORKER_MAX_MEMORY" in result.output and "invalid size 'lots'" in result.output


def test_read_rss_reads_this_process(tmp_path: Path) -> None:
    rss = read_rss()
    assert rss is not None and 10 * MB < rss < 4096 * MB
    assert read_rss(tmp_path / "missing") is None


def _middleware(client: redis.Redis, settings: Settings, rss: int, sent: list) -> MemoryLimit:
    middleware = MemoryLimit(client, settings.keys, 100 * MB, interval=1, drain_timeout=5,
                             rss=lambda: rss, parent=lambda: 4242,
                             kill=lambda pid, signum: sent.append((pid, signum)))
    middleware.under_cli = True
    return middleware


def test_over_the_limit_one_sighup_per_command(redis_client: redis.Redis, settings: Settings) -> None:
    sent: list = []
    first, second = (_middleware(redis_client, settings, 150 * MB, sent) for _ in range(2))
    first.check()
    first.check()   # asked already
    second.check()  # another process of the same command: the claim is held, its reload covers it
    assert sent == [(4242, signal.SIGHUP)]
    assert redis_client.get(settings.keys.memory_recycles) == b"1"
    assert redis_client.get(settings.keys.restarts) == b"1"
    below: list = []
    _middleware(redis_client, settings, 50 * MB, below).check()
    assert below == []


def test_redis_down_sends_nothing_and_tries_again(redis_client: redis.Redis, settings: Settings) -> None:
    sent: list = []
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    middleware = _middleware(down, settings, 150 * MB, sent)
    middleware.check()
    assert sent == [] and not middleware.asked  # no uncounted recycle; the next check tries again
    middleware.client = redis_client
    middleware.check()
    assert sent == [(4242, signal.SIGHUP)]


def test_outside_the_dramatiq_command_it_only_warns(redis_client: redis.Redis, settings: Settings,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    sent: list = []
    middleware = _middleware(redis_client, settings, 150 * MB, sent)
    middleware.under_cli = False
    middleware.check()
    assert sent == [] and "not recycled" in caplog.text


def test_a_worker_past_max_memory_is_drained_and_replaced(
    redis_client: redis.Redis, settings: Settings, worker_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**worker_env, "WORKER_MEMORY_CHECK_INTERVAL": "0.2"}
    command = LoggedProcess(
        [sys.executable, "-m", "gabay.cli", "workers", "-p", "1", "-t", "2", "--max-memory", "350M",
         "--module", memory_actors.__name__, "--queue", memory_actors.QUEUE],  # system
        env, tmp_path / "workers.log").launch()
    registry = WorkerRegistry(redis_client, settings)

    def worker_pids() -> list[int]:
        return [pid for main_pid in child_pids(command.pid) for pid in child_pids(main_pid)]

    def registered() -> list[int]:
        pids = worker_pids()
        return [w.pid for w in registry.workers() if w.pid in pids]

    try:
        [first] = wait_for(registered, timeout=30, message="the worker process to register")
        idle = read_rss(Path(f"/proc/{first}/status"))
        assert idle is not None and idle < 350 * MB, f"idle worker already at {idle // MB} MB"
        tokens = [f"s{i}" for i in range(4)]
        for token in tokens[:2]:
            memory_actors.slow.send(token, 1.5)
        wait_for(lambda: redis_client.llen(memory_actors.key("started")) >= 2, timeout=15,
                 message="two slow jobs to run")
        memory_actors.grow.send("grow", 400)  # queued behind the slow jobs' threads: prefetched
        for token in tokens[2:]:
            memory_actors.slow.send(token, 0.5)
        wait_for(lambda: first not in worker_pids() and registered(), timeout=40,
                 message="the big worker process to be replaced")
        expected = {*tokens, "grow"}

        def finished() -> list[str]:
            return [s.decode() for s in redis_client.lrange(memory_actors.key("finished"), 0, -1)]

        wait_for(lambda: {s.split(":")[0] for s in finished()} >= expected, timeout=30,
                 message="every job to finish")
        runs = Counter(s.split(":")[0] for s in finished())
        assert runs == Counter(expected)  # none lost, none run twice
        assert all(s.endswith(":0") for s in finished())  # no retry used
        # The two slow jobs running when the process grew finished in it (drained, not cut off).
        first_runs = [s for s in finished() if s.split(":")[1] == str(first)]
        assert {s.split(":")[0] for s in first_runs} >= {"s0", "s1", "grow"}
        status = StatusReader(settings, redis_client).read()
        assert status.memory_recycles == 1
        assert "over WORKER_MAX_MEMORY (350 MB): draining" in command.log()
        assert os.path.exists(f"/proc/{command.pid}")  # `gabay workers` itself kept running
    finally:
        code = command.stop(timeout=60)
    assert code == 0, command.log()
