"""The monitoring line: the seed's format, once per interval for the whole cluster."""

from __future__ import annotations

import datetime as dt
import math
import re
import time

import redis

from gabay.alerts.incidents import Incident
from gabay.alerts.incidents import monitor_line as alerts_line
from gabay.cluster.monitor import MonitorElection, monitor_lines
from gabay.cluster.status import ClusterStatus, FormResponseWorkerStatus, WorkersStatus, WorkloadStatus
from gabay.schedules.status import monitor_line as schedules_line
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


SECTION = re.compile(r"\[gabay\.monitor\] \[INFO\] (?P<text>(?:Schedules|Alerts) - .*)$", re.MULTILINE)


def test_the_schedules_line_names_paused_overdue_the_leader_and_the_next_run() -> None:
    entries = [
        {"name": "digests", "enabled": True, "paused": False, "overdue_since": None,
         "next_runs": ["2026-12-04T07:00:00+08:00", "2026-12-05T07:00:00+08:00"]},
        {"name": "backups", "enabled": True, "paused": False, "overdue_since": "2026-12-03T02:00:00+08:00",
         "next_runs": ["2026-12-04T02:00:00+08:00"]},
        {"name": "reports", "enabled": True, "paused": True, "overdue_since": None,
         "next_runs": ["2026-12-03T20:00:00+08:00"]},
    ]
    leader = {"token": 7, "identity": "host-a:4242:worker-1"}
    assert schedules_line(entries, leader) == (
        "Schedules - Count: 3, Paused: 1, Overdue: 1 (backups), Leader: host-a:4242, "
        "Next: backups at 2026-12-04T02:00:00+08:00")
    assert schedules_line(entries[2:], None) == (
        "Schedules - Count: 1, Paused: 1, Overdue: 0, Leader: none")
    assert schedules_line([], None) is None


def test_the_alerts_line_names_what_fires() -> None:
    def incident(rule: str, subject: str, state: str) -> Incident:
        return Incident(id="i", rule=rule, subject=subject, state=state, sent="", summary="",
                        since=0.0, opened_at=None)

    assert alerts_line([]) == "Alerts - Firing: 0, Pending: 0"
    assert alerts_line([incident("queue_depth", "retrieval", "firing"),
                        incident("dead_letter", "grading", "pending"),
                        incident("no_consumer", "reports", "resolved")]) == (
        "Alerts - Firing: 1 (queue_depth: retrieval), Pending: 1")


def test_the_monitoring_line_shows_the_schedules_and_alerts_state(start_workers, tmp_path) -> None:
    schedules = tmp_path / "schedules.toml"
    schedules.write_text('[schedules.yearly-probe]\ncron = "0 0 1 1 *"\nactor = "probe"\n')
    workers = start_workers(processes=1, threads=1, env={
        "MONITOR_INTERVAL": "1", "SCHEDULES_FILE": str(schedules), "SCHEDULE_TICK_SECONDS": "0.1"})

    def sections() -> dict[str, str]:
        return {m["text"].split(" - ")[0]: m["text"] for m in SECTION.finditer(workers.log())}

    def with_leader() -> dict[str, str] | None:
        found = sections()
        return found if "Leader: none" not in found.get("Schedules", "Leader: none") else None

    found = wait_for(with_leader, timeout=30, message="the schedules and alerts lines, with a leader")
    assert found["Schedules"].startswith("Schedules - Count: 1, Paused: 0, Overdue: 0, Leader: ")
    assert "Next: yearly-probe at " in found["Schedules"]
    assert found["Alerts"] == "Alerts - Firing: 0, Pending: 0"


def test_a_schedules_file_broken_after_boot_says_so_in_its_line_and_keeps_the_others(
        start_workers, tmp_path) -> None:
    schedules = tmp_path / "schedules.toml"
    schedules.write_text('[schedules.yearly-probe]\ncron = "0 0 1 1 *"\nactor = "probe"\n')
    workers = start_workers(processes=1, threads=1,
                            env={"MONITOR_INTERVAL": "1", "SCHEDULES_FILE": str(schedules)})
    schedules.write_text('[schedules.broken]\ncron = "every day"\nactor = "probe"\n')
    text = wait_for(lambda: "Schedules - unavailable: " in workers.log() and workers.log(), timeout=30,
                    message="the schedules line saying the file is unreadable")
    after = text[text.index("Schedules - unavailable: "):]
    assert "Alerts - Firing: 0, Pending: 0" in after or wait_for(
        lambda: "Alerts - Firing" in workers.log()[len(text):], timeout=10)
    assert "Traceback" not in text
