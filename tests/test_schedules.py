"""Scheduled jobs in one process: cron arithmetic and DST, the schedules file, the misfire policy,
the lease and the fire script on the real Redis, the status data and the ``gabay schedules`` command.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path

import dramatiq
import pytest
import redis
from click.testing import CliRunner
from freezegun import freeze_time

from gabay.cli import main
from gabay.errors import ConfigError
from gabay.schedules.config import Schedule, load_schedules, parse_schedules
from gabay.schedules.cron import latest_due, next_runs, to_ms
from gabay.schedules.firing import ALREADY, FIRED, NOT_LEADER, SKIPPED, Firing, run_id
from gabay.schedules.lease import LeaderLease
from gabay.schedules.policy import decide
from gabay.schedules.scheduler import Scheduler
from gabay.schedules.state import ScheduleState
from gabay.schedules.status import schedule_status
from gabay.settings import Settings, load_settings
from tests.support.polling import wait_for

MANILA = "Asia/Manila"
NEW_YORK = "America/New_York"


def schedule(cron: str, zone: str = MANILA, **fields: object) -> Schedule:
    return Schedule.model_validate({"name": "job", "cron": cron, "timezone": zone, "actor": "a", **fields})


def iso(moments: list[dt.datetime]) -> list[str]:
    return [m.isoformat() for m in moments]


def now_ms() -> int:
    return int(time.time() * 1000)


# -- cron arithmetic ------------------------------------------------------------------------------

@freeze_time("2026-01-30 12:00:00")
def test_a_day_that_some_months_lack_runs_only_in_the_months_that_have_it() -> None:
    assert iso(next_runs(schedule("0 9 31 * *"))) == [
        "2026-01-31T09:00:00+08:00", "2026-03-31T09:00:00+08:00", "2026-05-31T09:00:00+08:00"]


@freeze_time("2026-03-01 00:00:00")
def test_february_29_runs_in_leap_years_only() -> None:
    assert iso(next_runs(schedule("0 0 29 2 *"))) == [
        "2028-02-29T00:00:00+08:00", "2032-02-29T00:00:00+08:00", "2036-02-29T00:00:00+08:00"]


@freeze_time("2026-01-30 15:59:58")  # 23:59:58 in Manila, which has no DST
def test_manila_runs_in_its_own_zone_and_seconds_come_first() -> None:
    assert iso(next_runs(schedule("0 0 0 * * *"))) == [
        "2026-01-31T00:00:00+08:00", "2026-02-01T00:00:00+08:00", "2026-02-02T00:00:00+08:00"]
    assert iso(next_runs(schedule("*/30 * * * * *"), 2)) == [
        "2026-01-31T00:00:00+08:00", "2026-01-31T00:00:30+08:00"]


@freeze_time("2026-03-07 12:00:00")
def test_new_york_spring_forward_runs_a_skipped_time_at_the_change() -> None:
    assert iso(next_runs(schedule("30 2 * * *", NEW_YORK))) == [
        "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"]
    nine = next_runs(schedule("0 9 * * *", NEW_YORK))  # 09:00 local stays 09:00: 14:00 UTC, then 13:00
    assert iso(nine) == ["2026-03-07T09:00:00-05:00", "2026-03-08T09:00:00-04:00",
                         "2026-03-09T09:00:00-04:00"]
    assert [m.astimezone(dt.UTC).hour for m in nine] == [14, 13, 13]


@freeze_time("2026-10-31 12:00:00")
def test_new_york_fall_back_runs_a_fixed_time_once() -> None:
    assert iso(next_runs(schedule("30 1 * * *", NEW_YORK))) == [
        "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00", "2026-11-03T01:30:00-05:00"]


def test_new_york_fall_back_runs_wildcard_hours_in_both_repeated_hours() -> None:
    # Not under freezegun: its datetime class drops ``fold``, which tells the two 01:30s apart.
    after = dt.datetime(2026, 11, 1, 4, 50, tzinfo=dt.UTC)  # 00:50 EDT
    assert iso(next_runs(schedule("30 * * * *", NEW_YORK), 3, after)) == [
        "2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:30:00-05:00"]


@pytest.mark.parametrize("cron", ["30 1 * * *", "15 1,2,3 * * *", "30 2 * * *", "*/20 * * * *"])
@pytest.mark.parametrize("start", ["2026-03-07 18:00", "2026-10-31 18:00"])
def test_the_latest_due_slot_agrees_with_the_forward_runs_across_dst(cron: str, start: str) -> None:
    job = schedule(cron, NEW_YORK)
    begin = dt.datetime.fromisoformat(start).replace(tzinfo=dt.UTC)
    runs = [to_ms(m) for m in next_runs(job, 200, begin)]
    for minute in range(0, 36 * 60, 7):
        now = to_ms(begin) + minute * 60_000
        expected = max((r for r in runs if r <= now), default=None)
        assert latest_due(job, now, to_ms(begin)) == expected, (cron, minute)


def test_the_latest_due_slot_after_a_long_outage_costs_one_window() -> None:
    job = schedule("* * * * * *")
    now = now_ms()
    started = time.perf_counter()
    assert latest_due(job, now, now - 30 * 86_400_000) == now // 1000 * 1000
    assert time.perf_counter() - started < 0.5


# -- misfire policy -------------------------------------------------------------------------------

@freeze_time("2026-06-01 01:00:20")  # 09:00:20 in Manila: the 09:00 slot is 20 s old
def test_a_slot_within_its_grace_fires_on_time() -> None:
    job = schedule("0 9 * * *", grace_seconds=60)
    decision = decide(job, now_ms(), last_slot=now_ms() - 86_400_000 - 20_000)
    assert decision is not None and decision.action == "fire" and not decision.late
    assert decision.slot == to_ms(dt.datetime(2026, 6, 1, 1, 0, tzinfo=dt.UTC))
    assert decide(job, now_ms(), last_slot=decision.slot) is None  # handled: nothing more


@freeze_time("2026-06-01 04:00:00")  # noon in Manila: the 09:00 slot was missed by 3 hours
def test_a_missed_slot_runs_once_late_or_is_skipped_by_policy() -> None:
    yesterday = to_ms(dt.datetime(2026, 5, 31, 1, 0, tzinfo=dt.UTC))
    late = decide(schedule("0 9 * * *", misfire="run_once", grace_seconds=60), now_ms(), yesterday)
    assert late is not None and late.action == "fire" and late.late and late.late_ms == 3 * 3_600_000
    skipped = decide(schedule("0 9 * * *", misfire="skip", grace_seconds=60), now_ms(), yesterday)
    assert skipped is not None and skipped.action == "skip" and "missed by 10800.0 s" in skipped.reason


@freeze_time("2026-06-01 04:00:00")
def test_many_missed_slots_make_one_decision_for_the_latest() -> None:
    ten_hours_ago = now_ms() - 10 * 3_600_000
    late = decide(schedule("30 * * * *", misfire="run_once", grace_seconds=30), now_ms(), ten_hours_ago)
    assert late is not None and late.late and late.slot == now_ms() - 30 * 60_000  # 03:30 only
    skipped = decide(schedule("30 * * * *", misfire="skip", grace_seconds=30), now_ms(), ten_hours_ago)
    assert skipped is not None and skipped.action == "skip" and skipped.slot == late.slot
    on_time = decide(schedule("0 * * * *", misfire="skip", grace_seconds=30), now_ms(), ten_hours_ago)
    assert on_time is not None and on_time.action == "fire" and not on_time.late  # 04:00 is now


@freeze_time("2026-06-01 04:00:00")
def test_a_schedule_first_seen_after_its_slot_starts_there_without_running_it() -> None:
    decision = decide(schedule("0 9 * * *", misfire="run_once"), now_ms(), last_slot=None)
    assert decision is not None and decision.action == "baseline"
    on_time = decide(schedule("0 12 * * *"), now_ms(), last_slot=None)  # noon in Manila: now
    assert on_time is not None and on_time.action == "fire"


@freeze_time("2026-06-01 04:00:00")
def test_a_disabled_schedule_skips_its_slots() -> None:
    decision = decide(schedule("0 12 * * *", enabled=False), now_ms(), last_slot=now_ms() - 86_400_000)
    assert decision is not None and decision.action == "skip" and decision.reason == "disabled"


# -- the schedules file ---------------------------------------------------------------------------

GOOD = """
[schedules.nightly-report]
cron = "0 2 * * *"
actor = "nightly_report"
args = ["weekly", 3]
misfire = "skip"
grace_seconds = 120

[schedules.ny_digest]
cron = "0 9 * * 1-5"
timezone = "America/New_York"
actor = "digest"
kwargs = {audience = "teachers"}
"""


def test_a_good_file_with_defaults_and_overrides() -> None:
    found = parse_schedules(GOOD, MANILA, {"SCHEDULES_NIGHTLY_REPORT_ENABLED": "false",
                                           "SCHEDULES_NY_DIGEST_CRON": "30 9 * * 1-5"})
    report, digest = found
    assert (report.name, report.timezone, report.args, report.misfire, report.grace_seconds,
            report.enabled) == ("nightly-report", MANILA, ("weekly", 3), "skip", 120, False)
    assert (digest.timezone, digest.cron, digest.kwargs, digest.misfire, digest.grace_seconds,
            digest.enabled) == (NEW_YORK, "30 9 * * 1-5", {"audience": "teachers"}, "run_once", 60, True)


@pytest.mark.parametrize(("text", "overrides", "message"), [
    ('[schedules.a]\ncron = "61 * * * *"\nactor = "x"', {},
     "schedule 'a': cron: Bad minute in '61 * * * *' (5 fields, or 6 with seconds first)"),
    ('[schedules.a]\ncron = "0 0 30 2 *"\nactor = "x"', {}, "Bad day-of-month"),
    ('[schedules.a]\ncron = "* * */20 * 1L"\nactor = "x"', {}, "never matches in the next 50 years"),
    ('[schedules.a]\ncron = "* * * * *"\nactor = "x"\ntimezone = "Mars/Olympus"', {},
     "timezone: unknown time zone 'Mars/Olympus'"),
    ('[schedules.a]\ncron = "* * * * *"\nactor = "x"\nmisfire = "later"', {}, "misfire: Input should be"),
    ('[schedules.a]\ncron = "* * * * *"\nactor = "x"\ncolour = 1', {}, "colour: Extra inputs"),
    ('[schedules.a]\ncron = "* * * * *"', {}, "actor: Field required"),
    ('[schedules.A]\ncron = "* * * * *"\nactor = "x"', {}, "name: must be"),
    ('[schedules.a]\ncron = "* * * * *"\nactor = "x"\ngrace_seconds = -1', {}, "grace_seconds: Input"),
    ("[schedules.a\n", {}, "not valid TOML"),
    ('[jobs.a]\ncron = "* * * * *"', {}, "unknown top-level key 'jobs'"),
    ('[schedules.a-b]\ncron = "* * * * *"\nactor = "x"\n[schedules.a_b]\ncron = "* * * * *"\nactor = "x"',
     {}, "same variable name SCHEDULES_A_B_*"),
    ('[schedules.a]\ncron = "* * * * *"\nactor = "x"', {"SCHEDULES_B_ENABLED": "false"},
     "SCHEDULES_B_ENABLED: names no schedule"),
    ('[schedules.a]\ncron = "* * * * *"\nactor = "x"', {"SCHEDULES_A_ENABLED": "maybe"},
     "SCHEDULES_A_ENABLED: must be true or false"),
    ('[schedules.a]\ncron = "* * * * *"\nactor = "x"', {"SCHEDULES_A_CRON": "nope"},
     "cron: Wrong number of fields in 'nope'"),
])
def test_a_bad_file_is_one_clear_config_error_line(text: str, overrides: dict[str, str],
                                                     message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_schedules(text, MANILA, overrides, source="/etc/gabay/schedules.toml")
    line = str(caught.value)
    assert "\n" not in line and line.startswith("invalid schedules: ")
    assert message in line, line


def test_the_file_and_zone_come_from_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text('[schedules.a]\ncron = "* * * * *"\nactor = "x"\n')
    settings = load_settings(schedules_file=path, schedule_timezone="Europe/Paris", schedule_overrides={})
    assert [s.timezone for s in load_schedules(settings)] == ["Europe/Paris"]
    assert load_schedules(load_settings(schedules_file=None, schedule_overrides={})) == []
    with pytest.raises(ConfigError, match=r"SCHEDULES_FILE .*missing\.toml: No such file"):
        load_schedules(load_settings(schedules_file=tmp_path / "missing.toml", schedule_overrides={}))
    with pytest.raises(ConfigError, match="SCHEDULE_TIMEZONE: unknown time zone"):
        load_settings(schedule_timezone="Nowhere/Town")


def test_overrides_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text('[schedules.a]\ncron = "* * * * *"\nactor = "x"\n')
    monkeypatch.setenv("SCHEDULES_FILE", str(path))
    monkeypatch.setenv("SCHEDULES_A_ENABLED", "false")
    monkeypatch.setenv("SCHEDULES_A_MISFIRE", "skip")
    (only,) = load_schedules(load_settings())
    assert (only.enabled, only.misfire) == (False, "skip")


# -- the lease and the fire script on the real Redis ----------------------------------------------

def test_one_leader_at_a_time_and_each_term_has_a_new_token(redis_client: redis.Redis,
                                                             settings: Settings) -> None:
    a = LeaderLease(redis_client, settings.keys, "host:1:a", 300)
    b = LeaderLease(redis_client, settings.keys, "host:2:b", 300)
    first = a.acquire(None)
    assert first.term is not None and first.term.token == 1
    refused = b.acquire(None)
    assert refused.term is None and 0 < refused.remaining_ms <= 300
    assert a.acquire(first.term).term == first.term  # renewed, same term
    second = wait_for(lambda: b.acquire(None).term, timeout=5, message="the lease to run out")
    assert second.token == 2
    assert a.acquire(first.term).term is None  # a lost term is never revived
    assert not a.release(first.term) and b.release(second)
    assert b.holder() is None


def test_a_slot_fires_once_and_a_stale_leader_fires_nothing(redis_client: redis.Redis,
                                                            settings: Settings) -> None:
    keys = settings.keys
    a = LeaderLease(redis_client, keys, "host:1:a", 200)
    stale = a.acquire(None).term
    assert stale is not None
    b = LeaderLease(redis_client, keys, "host:2:b", 60_000)
    current = wait_for(lambda: b.acquire(None).term, timeout=5, message="the lease to run out")
    firing = Firing(redis_client, keys)
    job = schedule("* * * * * *", args=["x"], kwargs={"k": 1})
    slot = now_ms() // 1000 * 1000
    decision = decide(job, slot + 100, slot - 1000)
    assert decision is not None and decision.action == "fire"
    assert firing.apply(stale, job, decision, "system", slot + 100).code == NOT_LEADER
    assert redis_client.llen(keys.queue("system")) == 0
    fired = firing.apply(current, job, decision, "system", slot + 100)
    assert fired.code == FIRED and fired.message_id == run_id(keys, "job", slot)
    assert firing.apply(current, job, decision, "system", slot + 200).code == ALREADY
    assert redis_client.lrange(keys.queue("system"), 0, -1) == [fired.message_id.encode()]
    message = dramatiq.Message.decode(redis_client.hget(keys.messages("system"), fired.message_id))
    assert (message.actor_name, message.args, message.kwargs) == ("a", ("x",), {"k": 1})
    assert message.options == {"redis_message_id": fired.message_id, "schedule": "job",
                               "schedule_slot": slot}
    (entry,) = ScheduleState(redis_client, keys).records(["job"])["job"].history
    assert entry["action"] == "fire" and entry["slot"] == slot and entry["leader"] == current.value


def test_a_paused_schedule_skips_its_slot_and_resumes(redis_client: redis.Redis, settings: Settings) -> None:
    keys = settings.keys
    term = LeaderLease(redis_client, keys, "host:1:a", 60_000).acquire(None).term
    assert term is not None
    firing, state = Firing(redis_client, keys), ScheduleState(redis_client, keys)
    job = schedule("* * * * * *")
    state.pause("job")
    slot = now_ms() // 1000 * 1000
    decision = decide(job, slot, slot - 1000)
    assert decision is not None
    result = firing.apply(term, job, decision, "system", slot)
    assert (result.code, result.detail) == (SKIPPED, "paused")
    assert redis_client.llen(keys.queue("system")) == 0
    state.resume("job")
    decision = decide(job, slot + 1000, slot)
    assert decision is not None and firing.apply(term, job, decision, "system", slot + 1000).code == FIRED
    record = state.records(["job"])["job"]
    assert record.last_run is not None and record.last_run.slot_ms == slot + 1000
    assert record.last_skip == {"slot_ms": slot, "reason": "paused", "at_ms": slot}


# -- status and the command -----------------------------------------------------------------------

def test_status_is_json_and_the_command_lists_pauses_and_resumes(
        redis_client: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text('[schedules.digest]\ncron = "0 9 * * *"\nactor = "digest"\n'
                    '[schedules.ny]\ncron = "30 2 * * *"\ntimezone = "America/New_York"\nactor = "x"\n')
    monkeypatch.setenv("SCHEDULES_FILE", str(path))
    settings = load_settings()
    entries = schedule_status(settings, redis_client)
    assert json.loads(json.dumps(entries)) == entries
    assert [(e["name"], e["paused"], e["last_run"], len(e["next_runs"])) for e in entries] == [
        ("digest", False, None, 3), ("ny", False, None, 3)]
    assert all(run.endswith("+08:00") and "T09:00:00" in run for run in entries[0]["next_runs"])

    runner = CliRunner()
    assert runner.invoke(main, ["schedules", "pause", "digest"]).output == "paused: digest\n"
    listed = runner.invoke(main, ["schedules"])
    assert listed.exit_code == 0
    assert "digest  [enabled, PAUSED]  0 9 * * *  (Asia/Manila)  -> digest" in listed.output
    assert "Leader: none" in listed.output and "last run: never" in listed.output
    as_json = json.loads(runner.invoke(main, ["schedules", "--json"]).output)
    assert [e["paused"] for e in as_json["schedules"]] == [True, False]
    assert runner.invoke(main, ["schedules", "resume", "digest"]).output == "resumed: digest\n"
    assert not schedule_status(settings, redis_client)[0]["paused"]
    unknown = runner.invoke(main, ["schedules", "pause", "nope"])
    assert unknown.exit_code == 1
    assert unknown.output == "gabay: unknown schedule 'nope'; known schedules: digest, ny\n"


def test_the_command_says_when_redis_does_not_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text('[schedules.digest]\ncron = "0 9 * * *"\nactor = "digest"\n')
    monkeypatch.setenv("SCHEDULES_FILE", str(path))
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("REDIS_CONNECT_TIMEOUT", "0.5")
    result = CliRunner().invoke(main, ["schedules"])
    assert result.exit_code == 1
    assert result.output == "gabay: Redis does not answer at 127.0.0.1:1: ConnectionError\n"


def test_a_draining_leader_gives_the_lease_up_before_it_runs_out(redis_client: redis.Redis,
                                                                  settings: Settings) -> None:
    draining = threading.Event()
    jobs = [schedule("* * * * * *", actor="tick")]

    def scheduler(identity: str, stand_aside: threading.Event) -> Scheduler:
        return Scheduler(jobs, redis_client, settings.keys, identity=identity, lease_seconds=4,
                         tick_seconds=0.05, stand_aside=stand_aside.is_set)

    first, second = scheduler("host:1:a", draining), scheduler("host:2:b", threading.Event())
    first.start({"tick": "system"})
    try:
        wait_for(lambda: first.term, timeout=2, message="a leader")
        second.start({"tick": "system"})
        wait_for(lambda: redis_client.llen(settings.keys.queue("system")) >= 1, timeout=3,
                 message="a fire")
        draining.set()
        started = time.monotonic()
        wait_for(lambda: second.term, timeout=3, message="the other process to lead")
        assert time.monotonic() - started < 2.5  # a quarter lease and a poll, not the 4 s lease
        assert first.term is None
        wait_for(lambda: any(e["leader"].endswith("host:2:b") for e in
                             ScheduleState(redis_client, settings.keys).records(["job"])["job"].history),
                 timeout=3, message="a fire by the new leader")
    finally:
        first.stop()
        second.stop()
    history = ScheduleState(redis_client, settings.keys).records(["job"], history=50)["job"].history
    slots = [e["slot"] for e in history]
    assert len(slots) == len(set(slots))
    assert redis_client.get(settings.keys.schedule_leader) is None  # the stop gave it up
