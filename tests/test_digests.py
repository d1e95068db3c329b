"""Digest periods in the teacher's zone, and the digest email (HTML and text) from its facts."""

from __future__ import annotations

import datetime as dt

import pytest

from gabay.actors import broker
from gabay.digests.email import render_digest_email
from gabay.digests.facts import AttentionLine, DigestFacts, ExamLine
from gabay.digests.periods import latest_due, period_of, period_starting
from gabay.errors import InvalidInput
from gabay.mail.render import Address
from gabay.schedules.config import load_schedules
from gabay.settings import load_settings

MANILA = "Asia/Manila"  # UTC+8, no DST


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_the_daily_digest_of_yesterday_is_due_from_the_send_hour_in_the_teachers_zone() -> None:
    # 2026-12-02 06:59 in Manila is 2026-12-01 22:59 UTC: before 07:00, the day before yesterday
    before = latest_due("daily", utc(2026, 12, 1, 22, 59), MANILA, send_hour=7)
    after = latest_due("daily", utc(2026, 12, 1, 23, 0), MANILA, send_hour=7)
    assert before.first_day == dt.date(2026, 11, 30) and after.first_day == dt.date(2026, 12, 1)
    assert (after.start, after.end) == (utc(2026, 11, 30, 16), utc(2026, 12, 1, 16))  # local midnights
    assert after.label == "Tuesday 1 December 2026"


def test_the_weekly_digest_covers_monday_to_sunday_and_is_due_on_monday() -> None:
    due = latest_due("weekly", utc(2026, 12, 7, 0, 0), MANILA, send_hour=7)  # Monday 08:00 in Manila
    assert due.first_day == dt.date(2026, 11, 30) and due.first_day.weekday() == 0
    assert due.end - due.start == dt.timedelta(days=7)
    earlier = latest_due("weekly", utc(2026, 12, 6, 22, 0), MANILA, send_hour=7)  # Monday 06:00
    assert earlier.first_day == dt.date(2026, 11, 23)
    assert due.label == "week of Monday 30 November 2026"


def test_a_day_of_a_dst_change_is_a_local_day() -> None:
    spring = period_of("daily", dt.date(2026, 3, 29), "Europe/Berlin")
    autumn = period_of("daily", dt.date(2026, 10, 25), "Europe/Berlin")
    assert spring.end - spring.start == dt.timedelta(hours=23)
    assert autumn.end - autumn.start == dt.timedelta(hours=25)
    assert spring.start == utc(2026, 3, 28, 23)


def test_a_message_naming_a_time_that_starts_no_period_is_refused() -> None:
    good = period_of("weekly", dt.date(2026, 11, 30), MANILA)
    assert period_starting("weekly", good.start, MANILA) == good
    with pytest.raises(InvalidInput, match="not the start of a weekly period"):
        period_starting("weekly", good.start + dt.timedelta(days=1), MANILA)
    with pytest.raises(InvalidInput, match="not the start of a daily period"):
        period_starting("daily", good.start + dt.timedelta(hours=1), MANILA)


def facts() -> DigestFacts:
    return DigestFacts(
        period=period_of("daily", dt.date(2026, 12, 1), MANILA),
        exams=[ExamLine("bio-7", "Quiz <b>Photosynthesis</b>", 3, 71.0), ExamLine("chem", "Acids", 1, None)],
        mean_percent=71.0, attention=[AttentionLine("Quiz <b>Photosynthesis</b>", "q5", "too hard",
                                                    "difficulty 0.17")],
        question_requests=2, questions_accepted=9, drafts_rejected=3, emails_sent=4, emails_failed=1)


def test_the_digest_email_has_every_figure_in_html_and_text_and_reads_on_a_phone() -> None:
    teacher = Address("reyes@school.example", "Ms. Reyes")
    message = render_digest_email(load_settings(), facts(), teacher, "dg-1")
    assert message.subject == "Your daily digest: Tuesday 1 December 2026"
    assert message.to.email == "reyes@school.example"
    for part in (message.text, message.html):
        assert "4 new submissions" in part and "Average score: 71.0%" in part
        assert "3 submissions, average 71.0%" in part and "Acids: 1 submission" in part
        assert "q5" in part and "too hard" in part and "difficulty 0.17" in part
        assert "4 sent, 1 failed" in part
        assert "9 accepted from 2 requests, 75% of the drafts accepted" in part
    assert "<b>Photosynthesis</b>" in message.text
    assert "&lt;b&gt;Photosynthesis&lt;/b&gt;" in message.html and "<b>Photosynthesis" not in message.html
    assert 'name="viewport"' in message.html and "max-width:600px" in message.html
    assert "<style" not in message.html  # inlined, as in the feedback email


def test_a_period_with_nothing_of_the_teachers_is_empty() -> None:
    quiet = DigestFacts(period=facts().period, question_requests=5, questions_accepted=20)
    assert quiet.empty and not facts().empty and quiet.acceptance_rate == 1.0


def test_the_default_schedules_fire_the_digests_hourly_and_the_reports_weekly_and_can_be_off() -> None:
    schedules = {s.name: s for s in load_schedules(load_settings(schedule_defaults=True))}
    daily, weekly = schedules["digests-daily"], schedules["digests-weekly"]
    reports = schedules["exam-reports"]
    assert (daily.actor, daily.args, daily.cron) == ("send_digests", ("daily",), "5 * * * *")
    assert (weekly.actor, weekly.args) == ("send_digests", ("weekly",))
    assert (reports.actor, reports.cron) == ("send_due_reports", "0 6 * * 1")
    assert daily.timezone == load_settings().schedule_timezone
    for schedule in (daily, weekly, reports):
        assert schedule.enabled and broker.get_actor(schedule.actor) is not None

    off = load_settings(schedule_defaults=True,
                        schedule_overrides={"SCHEDULES_DIGESTS_WEEKLY_ENABLED": "false"})
    assert not {s.name: s for s in load_schedules(off)}["digests-weekly"].enabled
