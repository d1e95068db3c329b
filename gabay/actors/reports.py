"""The report worker: ``send_exam_report(exam_id)`` on queue ``reports``, and its schedule's actor.

``send_exam_report.send(form_id)`` builds the PDF report of the exam's current analytics, keeps
it under ``REPORTS_DIR`` (its path in the store's ``exam_reports``) and emails it to the exam's
teacher once (:mod:`gabay.reports.service`). ``send_due_reports`` (the default schedule
``exam-reports``) enqueues one report for each exam whose analytics changed since its last
report. Final errors (no such exam, no analytics, no teacher address, an email Brevo rejects)
go to the dead-letter queue at once; transient ones (the store, Redis, Brevo 429/5xx) are retried.
"""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.middleware import CurrentMessage

from gabay.actors.bound import bound_broker
from gabay.errors import EmailRejected, EmailRetryable, EmailUncertain, InvalidInput
from gabay.jobs import JobStore
from gabay.mail.delivery import Hook
from gabay.mail.mailer import build_mailer
from gabay.mail.sent_records import SentRecords
from gabay.queues import REPORTS
from gabay.reports.service import ReportOutcome, ReportSender, job_addresses
from gabay.store.results import ResultsStore

logger = logging.getLogger(__name__)

MAX_RETRIES = 8
MAX_RETRY_AFTER_MS = 15 * 60 * 1000
FINAL_ERRORS = (InvalidInput, EmailRejected, EmailUncertain)
REPORT_ACTOR = "send_exam_report"
DUE_REPORTS_ACTOR = "send_due_reports"

broker = bound_broker()
settings = broker.settings
results = ResultsStore.from_settings(settings)
sender = ReportSender(settings, results, SentRecords(broker.client, settings), build_mailer(settings),
                      job_addresses(JobStore(broker.client, settings)), guard=broker.ownership.check)


def run(form_id: str, hook: Hook | None = None) -> ReportOutcome:
    """The body of the actor (shared with test variants that inject a hook)."""
    if not isinstance(form_id, str) or not form_id.strip():
        raise InvalidInput("send_exam_report takes an exam's form id (a non-empty string)")
    try:
        return sender.send(form_id, hook=hook)
    except EmailRetryable as exc:
        if exc.retry_after is None:
            raise
        raise dramatiq.Retry(str(exc), delay=min(int(exc.retry_after * 1000), MAX_RETRY_AFTER_MS)) from exc


@dramatiq.actor(actor_name=REPORT_ACTOR, queue_name=REPORTS, max_retries=MAX_RETRIES, min_backoff=2_000,
                max_backoff=120_000, throws=FINAL_ERRORS, time_limit=10 * 60 * 1000)
def send_exam_report(exam_id: str) -> None:
    """The PDF report of one exam, stored and emailed to its teacher once."""
    message = CurrentMessage.get_current_message()
    outcome = run(exam_id)
    logger.info("Report %s (message %s): %s", outcome.report_id,
                message.message_id if message else "-", "sent" if outcome.sent_now else "sent before")


@dramatiq.actor(actor_name=DUE_REPORTS_ACTOR, queue_name=REPORTS, max_retries=5, min_backoff=2_000,
                max_backoff=60_000, time_limit=60 * 1000)
def send_due_reports() -> None:
    """Enqueue the report of every exam whose analytics changed since its last report."""
    due = results.exams_due_report()
    for form_id in due:
        exam = results.exam(form_id)
        teacher = results.teacher(exam["teacher_id"]) if exam and exam.get("teacher_id") else None
        if teacher is None or not teacher.get("email"):
            logger.info("Exam %s names no teacher address; no report", form_id)
            continue
        send_exam_report.send(form_id)
    logger.info("Due reports: %d exam(s) with new analytics", len(due))
