"""The monitoring line: the seed's format, once per interval for the whole cluster."""

from __future__ import annotations

import datetime as dt
import math
import re
import time

import redis

from gabay.cluster.monitor import MonitorElection, monitor_lines
from gabay.cluster.status import ClusterStatus, FormResponseWorkerStatus, WorkersStatus, WorkloadStatus
from gabay.settings import Settings
from tests.support.polling import wait_for

LINE = re.compile(r"^\[(?P<at>[\d-]+ [\d:,]+)\] \[PID (?P<pid>\d+)\] .*\[gabay\.monitor\] \[INFO\] "
                  r"(?P<text>Question Generation - .*)$", re.MULTILINE)


def test_lines_have_the_seed_format() -> None:
    status = ClusterStatus(
        healthy=True,
        workers=WorkersStatus(is_running=True, worker_count=3, concurrency=24),
        queues=WorkloadStatus(active=2, waiting=5, completed=143, failed=1),
        form_response_worker=FormResponseWorkerStatus(active=1, waiting=3, completed=87, failed=0),
    )
    assert monitor_lines(status) == [
        "Question Generation - Workers: 3, Active: 2, Waiting: 5, Completed: 143",
        "Form Response - Active: 1, Waiting: 3, Completed: 87, Failed: 0",
    ]
    disabled = status.model_copy(update={"form_response_worker": FormResponseWorkerStatus(enabled=False)})
    assert monitor_lines(disabled)[1].endswith("Failed: 0 (disabled)")


def test_only_one_process_wins_each_interval(redis_client: redis.Redis, settings: Settings) -> None:
    hourly = settings.model_copy(update={"monitor_interval": 3600.0})
    first, second = MonitorElection(redis_client, hourly), MonitorElection(redis_client, hourly)
    assert [first.elected(), second.elected(), first.elected(), second.elected()] == [
        True, False, False, False
    ]


def test_the_cluster_logs_one_line_per_interval_not_one_per_process(start_workers) -> None:
    interval = 1.0
    workers = start_workers(processes=2, threads=1, env={"MONITOR_INTERVAL": str(interval)})
    booted = time.time()

    def lines_after_boot() -> list[re.Match[str]]:
        return [m for m in LINE.finditer(workers.log()) if _epoch(m["at"]) >= booted]

    wait_for(lambda: len(lines_after_boot()) >= 8, timeout=60, message="eight monitoring lines")
    workers.stop()
    stopped = time.time()

    lines = lines_after_boot()
    intervals = math.floor(stopped / interval) - math.floor(booted / interval) + 1
    # One line per interval at most (+1: a line of the interval before boot may be logged after it);
    # without the election the two processes would log about two per interval.
    assert len(lines) <= intervals + 1, (len(lines), intervals)
    assert all(m["text"].startswith("Question Generation - Workers: 2, Active: 0, Waiting: 0")
               for m in lines[-3:])
    form_lines = workers.log().count("] Form Response - Active: ")
    assert form_lines == len(LINE.findall(workers.log()))


def _epoch(stamp: str) -> float:
    return dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
