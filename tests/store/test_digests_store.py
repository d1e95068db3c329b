"""Digests from the results store (SQLite and PostgreSQL): the facts of a teacher's period, one
email per teacher per period, opt-out, empty periods, the store down."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import redis
from click.testing import CliRunner

from gabay.cli import main
from gabay.digests.facts import gather
from gabay.digests.periods import latest_due, period_of
from gabay.digests.service import DigestSender, digest_job_id
from gabay.errors import EmailRejected, StoreUnavailable
from gabay.feedback.pipeline import FeedbackContext, process
from gabay.mail.mailer import OutboxMailer
from gabay.mail.sent_records import SentRecords
from gabay.queues import REPORTS
from gabay.reports.flags import Thresholds
from gabay.settings import Settings
from gabay.store.records import QuestionFacts
from gabay.store.results import ResultsStore
from tests.fakes import brevo_server
from tests.fakes.brevo_server import FakeBrevo
from tests.support.feedback_samples import sample
from tests.support.report_data import FORM_ID, TEACHER_EMAIL, TEACHER_ID, seed_exam, seed_teacher

ZONE = "Asia/Manila"


def digest_sender(settings: Settings, store: ResultsStore, client: redis.Redis) -> DigestSender:
    return DigestSender(settings, store, SentRecords(client, settings), OutboxMailer(settings.outbox_dir))


def test_the_facts_of_a_period_count_the_teachers_submissions_flags_questions_and_emails(
        store: ResultsStore) -> None:
    now = dt.datetime.now(dt.UTC)
    today = period_of("daily", now.astimezone(dt.timezone(dt.timedelta(hours=8))).date(), ZONE)
    seed_exam(store, submitted_at=today.start + dt.timedelta(minutes=5))
    seed_exam(store, submitted_at=today.start - dt.timedelta(days=2), form_id="older-exam")  # not this day
    seed_exam(store, submitted_at=today.start, form_id="other-teachers",
              teacher_email="santos@school.example")
    store.record_question_result(QuestionFacts(request_id="lesson-1", document_id="doc", count=3,
                                               job_id="q-1", accepted=[{}, {}, {}], rejected=[{}]))

    facts = gather(store, TEACHER_ID, today, Thresholds())

    assert [(e.form_id, e.submissions) for e in facts.exams] == [("photosynthesis-check", 6)]
    assert facts.submissions == 6 and facts.mean_percent == pytest.approx((100 + 80 + 60 + 40 + 20 + 20) / 6)
    assert [(a.question_id, a.reason) for a in facts.attention] == [
        ("q1", "distractor nobody picks"), ("q1", "distractor nobody picks"),
        ("q2", "distractor nobody picks"), ("q2", "distractor nobody picks"), ("q5", "too hard")]
    assert (facts.question_requests, facts.questions_accepted, facts.drafts_rejected) == (1, 3, 1)
    assert facts.acceptance_rate == 0.75 and (facts.emails_sent, facts.emails_failed) == (6, 0)


def test_each_teacher_gets_one_digest_per_period_and_opted_out_or_quiet_ones_none(
        store: ResultsStore, store_settings: Callable[..., Settings], redis_client: redis.Redis) -> None:
    settings = store_settings(schedule_timezone=ZONE, digest_hour=7)
    now = dt.datetime.now(dt.UTC)
    period = latest_due("daily", now, ZONE, 7)
    seed_exam(store, submitted_at=period.start + dt.timedelta(hours=1))
    quiet = seed_teacher(store, "quiet@school.example", "Mr. Quiet")
    opted = seed_teacher(store, "opted@school.example", "Ms. Opted")
    seed_exam(store, submitted_at=period.start, form_id="opted-exam", teacher_email="opted@school.example")
    store.set_teacher_preferences(opted, digests_opt_out=True)
    digests = digest_sender(settings, store, redis_client)

    due = digests.due("daily", now)
    assert sorted(d.teacher_id for d in due) == sorted([TEACHER_ID, quiet])  # opted out: not fanned out
    assert {d.period_start for d in due} == {period.start}
    states = {d.teacher_id: digests.send(d.teacher_id, "daily", d.period_start) for d in due}
    again = [digests.send(d.teacher_id, "daily", d.period_start) for d in due]  # retries, duplicates
    late_opt_out = digests.send(opted, "daily", period.start)  # a message enqueued before the opt-out

    assert states == {TEACHER_ID: "sent", quiet: "empty"} and sorted(again) == ["empty", "sent"]
    assert late_opt_out == "opted_out"
    emails = list(settings.outbox_dir.glob("*.eml"))
    assert [p.name for p in emails] == [f"{digest_job_id(TEACHER_ID, 'daily', period.start)}.eml"]
    assert "Daily digest" in emails[0].read_text() and "6 new submissions" in emails[0].read_text()
    assert digests.due("daily", now) == []  # every due period has its row now
    assert {(r["teacher_id"], r["state"]) for r in store.digests()} == {
        (TEACHER_ID, "sent"), (quiet, "empty"), (opted, "opted_out")}


def test_a_teachers_own_zone_decides_their_period(
        store: ResultsStore, store_settings: Callable[..., Settings], redis_client: redis.Redis) -> None:
    settings = store_settings(schedule_timezone=ZONE)
    seed_teacher(store)
    store.set_teacher_preferences(TEACHER_ID, time_zone="America/New_York")
    now = dt.datetime.now(dt.UTC)
    [due] = digest_sender(settings, store, redis_client).due("weekly", now)
    assert due.period_start == latest_due("weekly", now, "America/New_York", settings.digest_hour).start


def test_a_store_that_is_down_sends_no_digest(
        store_settings: Callable[..., Settings], make_store: Callable[[Settings], ResultsStore],
        down_url: str, redis_client: redis.Redis) -> None:
    settings = store_settings(database_url=down_url)
    digests = digest_sender(settings, make_store(settings), redis_client)
    with pytest.raises(StoreUnavailable):
        digests.send(TEACHER_ID, "daily", period_of("daily", dt.date(2026, 12, 1), ZONE).start)
    with pytest.raises(StoreUnavailable):
        digests.due("daily", dt.datetime.now(dt.UTC))
    assert not settings.outbox_dir.exists()


def run(args: list[str], **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_the_digests_commands_opt_a_teacher_out_and_in_and_set_their_zone(
        store: ResultsStore, database_url: str) -> None:
    code, out = run(["digests", "opt-out", TEACHER_EMAIL], DATABASE_URL=database_url)
    assert code == 0 and out == f"Teacher {TEACHER_ID}: digests off.\n"
    assert "@" not in out  # the address given becomes the id; only the id is printed
    teacher = store.teacher(TEACHER_ID)
    assert teacher is not None and teacher["digests_opt_out"] is True

    assert run(["digests", "zone", TEACHER_ID, "Europe/Berlin"], DATABASE_URL=database_url)[0] == 0
    code, out = run(["digests", "zone", TEACHER_ID, "Mars/Olympus"], DATABASE_URL=database_url)
    assert code == 1 and "unknown time zone 'Mars/Olympus'" in out
    assert run(["digests", "opt-in", TEACHER_ID], DATABASE_URL=database_url)[0] == 0
    teacher = store.teacher(TEACHER_ID)
    assert teacher is not None and teacher["digests_opt_out"] is False
    assert teacher["time_zone"] == "Europe/Berlin"


def test_the_reports_command_enqueues_an_exams_report_or_says_why_not(
        store: ResultsStore, database_url: str, redis_client: redis.Redis, settings: Settings) -> None:
    code, out = run(["reports", "send", FORM_ID], DATABASE_URL=database_url)
    assert code == 1
    assert out == f"gabay: exam '{FORM_ID}' has no analytics in the results store; nothing to report\n"
    seed_exam(store, submitted_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))

    code, out = run(["reports", "send", FORM_ID], DATABASE_URL=database_url)

    assert code == 0 and out.startswith("Report rp-") and "enqueued on queue reports" in out
    assert redis_client.llen(settings.keys.queue(REPORTS)) == 1
    assert run(["reports", "list", FORM_ID], DATABASE_URL=database_url)[1] == f"no report of exam {FORM_ID}\n"


def test_a_feedback_email_that_failed_for_good_is_counted_in_its_teachers_digest(
        store: ResultsStore, store_settings: Callable[..., Settings], redis_client: redis.Redis,
        brevo: FakeBrevo) -> None:
    settings = store_settings(brevo_api_key=brevo.api_key, brevo_base_url=brevo.base_url, brevo_timeout=2)
    ctx = FeedbackContext.build(settings, redis_client, results=store)
    brevo.script(brevo_server.bad_request())
    with pytest.raises(EmailRejected):
        process(ctx, sample("mixed-score"))  # its teacher is reyes@school.example

    today = period_of("daily", dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date(),
                      ZONE)
    facts = gather(store, TEACHER_ID, today, Thresholds())
    assert (facts.emails_sent, facts.emails_failed) == (0, 1) and not facts.empty

    process(ctx, sample("mixed-score"))  # enqueued again after the final failure: now it goes out
    assert gather(store, TEACHER_ID, today, Thresholds()).emails_failed == 0
