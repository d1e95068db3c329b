"""Sending one exam's report once: build the PDF, keep the file, record it, email it to the teacher.

The report is of the exam's *current* analytics: its id (``rp-<uuid5>``) is derived from the
exam and the time those analytics were computed, so asking again for an exam whose analytics
did not change sends nothing, and new analytics make a new report. The steps, and what a crash
between them leaves:

1. the store row says ``sent`` -> nothing to do;
2. the PDF is written under ``REPORTS_DIR`` once (temporary file, then a hard link that fails if
   the name exists), so a retry attaches the very file that was kept; the store records its path;
3. the email goes through :func:`gabay.mail.delivery.deliver_once` with the report id as the
   sent record's key and an idempotency key derived from it: the same exactly-once machinery as
   the feedback email (a crash after the send is found by the sent record or Brevo's log);
4. the store row is marked ``sent``.

A store that cannot be reached raises StoreUnavailable before anything is sent (retried).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gabay.errors import InvalidInput, JobNotFound
from gabay.grading.key import parse_answer_key
from gabay.jobs import JobStore
from gabay.mail.delivery import Guard, Hook, deliver_once
from gabay.mail.mailer import Delivery, Mailer
from gabay.mail.render import Address
from gabay.mail.sent_records import SentRecords
from gabay.reports.content import ReportContent, report_content, student_rows
from gabay.reports.email import render_report_email
from gabay.reports.flags import Thresholds
from gabay.settings import Settings
from gabay.store.records import StoredReport
from gabay.store.results import ResultsStore

logger = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("0b3a6c52-7d3e-4f4e-a3a1-5e2f8c9d7b21")
#: response id, student id, job id -> the label of the student's row.
Labels = Callable[[list[dict[str, Any]]], dict[str, str]]


def report_id_for(form_id: str, computed_at: dt.datetime) -> str:
    """The report of these analytics: the same exam and analytics time always give the same id."""
    return "rp-" + uuid.uuid5(_NAMESPACE, f"report:{form_id}@{computed_at.isoformat()}").hex


def idempotency_key_for(report_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "email:" + report_id))


def job_addresses(jobs: JobStore) -> Labels:
    """Labels from the submissions' feedback jobs (the address their email went to), while kept.

    A job record expired (``JOB_TTL``) leaves the student's pseudonymous id.
    """
    def labels(students: list[dict[str, Any]]) -> dict[str, str]:
        found: dict[str, str] = {}
        for student in students:
            label = student.get("student_id") or "anonymised"
            try:
                result = jobs.get(student["job_id"]).result or {}
                label = str(result.get("to") or label)
            except JobNotFound:
                pass
            found[student["response_id"]] = label
        return found

    return labels


@dataclass(frozen=True)
class ReportOutcome:
    report_id: str
    form_id: str
    path: str
    delivery: Delivery
    sent_now: bool


@dataclass(frozen=True)
class ReportSender:
    """Sends exam reports; collaborators are passed in (see :func:`build_sender` in the actor)."""

    settings: Settings
    results: ResultsStore
    records: SentRecords
    mailer: Mailer
    labels: Labels
    guard: Guard | None = None

    def send(self, form_id: str, hook: Hook | None = None) -> ReportOutcome:
        exam = self.results.exam(form_id)
        if exam is None:
            raise InvalidInput(f"exam {form_id!r} is not in the results store")
        analytics = self.results.analytics(form_id)
        if analytics is None:
            raise InvalidInput(f"exam {form_id!r} has no analytics yet (no graded submission stored)")
        teacher = self._teacher(exam)
        report_id = report_id_for(form_id, analytics.computed_at)
        stored = self.results.report(report_id)
        if stored is not None and stored.email_state == "sent":
            logger.info("Report %s of exam %s was sent before; not sending again", report_id, form_id)
            return ReportOutcome(report_id, form_id, stored.path, _delivery_of(stored), sent_now=False)
        content = self._content(exam, analytics.report, analytics.computed_at)
        from gabay.reports.pdf import build_pdf  # reportlab loads when a report is built, not at boot

        path = write_pdf_once(self.settings.report_dir, pdf_file_name(form_id, report_id), build_pdf(content))
        self.results.record_report(StoredReport(
            report_id=report_id, form_id=form_id, teacher_id=exam["teacher_id"],
            analytics_computed_at=analytics.computed_at, path=str(path), size_bytes=path.stat().st_size))
        message = render_report_email(self.settings, content, path.read_bytes(), teacher, report_id)
        delivery = deliver_once(self.mailer, self.records, report_id, idempotency_key_for(report_id), message,
                                f"{report_id}.eml", hook, guard=self.guard)
        self.results.mark_report_sent(
            report_id, via=delivery.via, message_id=delivery.message_id,
            outbox_file=Path(delivery.outbox_path).name if delivery.outbox_path else None)
        logger.info("Report %s of exam %s delivered (%s)", report_id, form_id, delivery.via)
        return ReportOutcome(report_id, form_id, str(path), delivery, sent_now=not delivery.earlier)

    def _teacher(self, exam: dict[str, Any]) -> Address:
        teacher = self.results.teacher(exam["teacher_id"]) if exam.get("teacher_id") else None
        if teacher is None or not teacher.get("email"):
            raise InvalidInput(f"exam {exam['form_id']!r} names no teacher address (its submissions "
                               "carry no teacher); no report to send")
        return Address(str(teacher["email"]), str(teacher.get("name") or ""))

    def _content(self, exam: dict[str, Any], report: dict[str, Any],
                 computed_at: dt.datetime) -> ReportContent:
        """The content from the stored rows: the grades of the key the analytics describe."""
        students = self.results.exam_students(exam["form_id"])
        if isinstance(exam.get("answer_key"), dict):
            digest = parse_answer_key(exam["answer_key"]).digest()
            students = [s for s in students if s["grade"].get("answer_key_digest") == digest]
        labels = self.labels(students)
        rows = student_rows([s["grade"] for s in students], labels,
                            {s["response_id"]: s["submitted_at"] for s in students})
        thresholds = Thresholds(self.settings.report_easy_above, self.settings.report_hard_below)
        return report_content(exam, report, computed_at, rows, thresholds, dt.datetime.now(dt.UTC))


def pdf_file_name(form_id: str, report_id: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", form_id)[:80].lstrip(".") or "exam"
    return f"{readable}--{report_id.removeprefix('rp-')[:12]}.pdf"


def write_pdf_once(directory: Path, name: str, data: bytes) -> Path:
    """``directory/name`` with ``data`` unless it exists (then the kept file wins); atomic."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    if final.exists():
        return final
    temporary = directory / f".{name}.{uuid.uuid4().hex}.tmp"
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temporary, final)
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)
    return final


def _delivery_of(stored: StoredReport) -> Delivery:
    return Delivery(via=stored.email_via or "", message_id=stored.email_message_id,
                    outbox_path=stored.outbox_file, earlier=True)
