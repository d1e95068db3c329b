"""Reports and digests in the results store (SQLite and PostgreSQL): the report's file, its row
and its one email; the teacher's address and settings; the digest rows claimed once."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import io
from collections.abc import Callable
from pathlib import Path

import pypdf
import pytest
import redis

from gabay.errors import EmailRetryable, InvalidInput, StoreUnavailable
from gabay.jobs import JobStore
from gabay.mail.mailer import BrevoMailer, Mailer, OutboxMailer
from gabay.mail.sent_records import SentRecords
from gabay.reports.service import ReportSender, job_addresses, report_id_for
from gabay.settings import Settings
from gabay.store.records import TeacherFacts
from gabay.store.results import ResultsStore
from tests.fakes import brevo_server
from tests.fakes.brevo_server import FakeBrevo
from tests.support.report_data import FORM_ID, TEACHER_EMAIL, TEACHER_ID, seed_exam, student_address

SUBMITTED = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)


def sender(settings: Settings, store: ResultsStore, client: redis.Redis,
           mailer: Mailer | None = None) -> ReportSender:
    return ReportSender(settings, store, SentRecords(client, settings),
                        mailer or OutboxMailer(settings.outbox_dir),
                        job_addresses(JobStore(client, settings)))


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_a_report_is_kept_recorded_and_emailed_once_with_the_pdf_attached(
        store: ResultsStore, store_settings: Callable[..., Settings], redis_client: redis.Redis) -> None:
    settings = store_settings()
    analytics = seed_exam(store, submitted_at=SUBMITTED, client=redis_client, settings=settings)
    reports = sender(settings, store, redis_client)

    first = reports.send(FORM_ID)
    again = reports.send(FORM_ID)  # a retry, a duplicate message, the schedule: nothing more

    assert first.sent_now and not again.sent_now and first.report_id == again.report_id
    assert first.report_id == report_id_for(FORM_ID, analytics.computed_at)
    kept = Path(first.path)
    assert kept.parent == settings.gabay_data_dir / "reports" and kept.exists()
    row = store.report(first.report_id)
    assert row is not None and row.email_state == "sent" and row.path == str(kept)
    assert row.size_bytes == kept.stat().st_size and row.teacher_id == TEACHER_ID
    emails = sorted(settings.outbox_dir.glob("*.eml"))
    assert [p.name for p in emails] == [f"{first.report_id}.eml"] and row.outbox_file == emails[0].name

    message = email.message_from_bytes(emails[0].read_bytes(), policy=email.policy.default)
    assert [a.addr_spec for a in message["To"].addresses] == [TEACHER_EMAIL]
    attachments = list(message.iter_attachments())  # type: ignore[attr-defined]
    assert [(a.get_filename(), a.get_content_type()) for a in attachments] == [
        (f"report-{FORM_ID}.pdf", "application/pdf")]
    assert attachments[0].get_content() == kept.read_bytes()  # the outbox keeps the very file
    text = pdf_text(kept.read_bytes())
    assert student_address("s1") in text and student_address("s6") in text  # from the feedback jobs


def test_new_analytics_make_a_new_report_and_a_lost_job_record_leaves_the_pseudonym(
        store: ResultsStore, store_settings: Callable[..., Settings], redis_client: redis.Redis) -> None:
    settings = store_settings()
    seed_exam(store, submitted_at=SUBMITTED)  # no job records: they expired
    reports = sender(settings, store, redis_client)
    first = reports.send(FORM_ID)
    assert store.exams_due_report() == []
    later = seed_exam(store, submitted_at=SUBMITTED,
                      computed_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    assert store.exams_due_report() == [FORM_ID]

    second = reports.send(FORM_ID)

    assert second.report_id == report_id_for(FORM_ID, later.computed_at) != first.report_id
    assert [r.report_id for r in store.reports(FORM_ID)] == [first.report_id, second.report_id]
    assert len(list(settings.outbox_dir.glob("*.eml"))) == 2
    text = pdf_text(Path(second.path).read_bytes())
    assert "@" not in text and "st-" in text


def test_brevo_gets_the_pdf_in_its_attachment_field_once_even_when_its_answer_is_lost(
        store: ResultsStore, store_settings: Callable[..., Settings], redis_client: redis.Redis,
        brevo: FakeBrevo) -> None:
    settings = store_settings(brevo_api_key=brevo.api_key, brevo_base_url=brevo.base_url, brevo_timeout=2)
    seed_exam(store, submitted_at=SUBMITTED)
    brevo.deduplicate = False  # only the sent record and Brevo's list stop a second email
    brevo.script(brevo_server.accept_then_drop())
    reports = sender(settings, store, redis_client, BrevoMailer(settings))

    with pytest.raises(EmailRetryable):
        reports.send(FORM_ID)
    outcome = reports.send(FORM_ID)  # the retry finds the email in Brevo's list

    assert len(brevo.accepted) == 1 and len(brevo.sends) == 1 and len(brevo.log_queries) == 1
    [attachment] = brevo.accepted[0]["attachment"]
    assert attachment["name"] == f"report-{FORM_ID}.pdf"
    assert base64.b64decode(attachment["content"]) == Path(outcome.path).read_bytes()
    row = store.report(outcome.report_id)
    assert row is not None and row.email_state == "sent" and row.email_via == "brevo"


def test_an_exam_without_a_teacher_address_or_analytics_is_refused_in_one_line(
        store: ResultsStore, store_settings: Callable[..., Settings], redis_client: redis.Redis) -> None:
    settings = store_settings()
    seed_exam(store, submitted_at=SUBMITTED, teacher_email=None)
    reports = sender(settings, store, redis_client)
    with pytest.raises(InvalidInput, match="names no teacher address"):
        reports.send(FORM_ID)
    with pytest.raises(InvalidInput, match="not in the results store"):
        reports.send("no-such-exam")
    assert not settings.outbox_dir.exists() and store.reports(FORM_ID) == []


def test_a_store_that_is_down_sends_nothing(
        store_settings: Callable[..., Settings], make_store: Callable[[Settings], ResultsStore],
        down_url: str, redis_client: redis.Redis) -> None:
    settings = store_settings(database_url=down_url)
    with pytest.raises(StoreUnavailable):
        sender(settings, make_store(settings), redis_client).send(FORM_ID)
    assert not settings.outbox_dir.exists()


def test_a_teachers_settings_survive_their_next_submission(store: ResultsStore) -> None:
    store.set_teacher_preferences(TEACHER_ID, digests_opt_out=True, time_zone="Europe/Berlin")
    assert store.teacher(TEACHER_ID) is not None and store.teacher(TEACHER_ID)["email"] is None  # type: ignore[index]

    store.record_teacher(TeacherFacts(TEACHER_ID, TEACHER_EMAIL, "Ms. Reyes"))

    teacher = store.teacher(TEACHER_ID)
    assert teacher is not None and teacher["email"] == TEACHER_EMAIL
    assert teacher["digests_opt_out"] is True and teacher["time_zone"] == "Europe/Berlin"
    store.set_teacher_preferences(TEACHER_ID, digests_opt_out=False, time_zone="")
    teacher = store.teacher(TEACHER_ID)
    assert teacher is not None and teacher["digests_opt_out"] is False and teacher["time_zone"] is None


def test_a_digest_row_is_claimed_once_per_teacher_period_and_start(store: ResultsStore) -> None:
    start = dt.datetime(2026, 11, 30, 16, 0, tzinfo=dt.UTC)
    first = store.claim_digest(TEACHER_ID, "daily", start, "dg-1")
    second = store.claim_digest(TEACHER_ID, "daily", start, "dg-2")
    weekly = store.claim_digest(TEACHER_ID, "weekly", start, "dg-3")
    assert (first.claimed, second.claimed, weekly.claimed) == (True, False, True)
    assert second.job_id == "dg-1" and second.state == "claimed"

    store.finish_digest(TEACHER_ID, "daily", start, "sent", via="outbox", outbox_file="dg-1.eml")

    assert store.claim_digest(TEACHER_ID, "daily", start, "dg-4").state == "sent"
    assert store.digest_keys("daily", start) == {(TEACHER_ID, start)}
    assert [(r["period"], r["state"]) for r in store.digests(TEACHER_ID)] == [("daily", "sent"),
                                                                                ("weekly", "claimed")]
