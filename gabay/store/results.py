"""The ResultsStore: small explicit reads and writes of the results database.

Every write is an upsert on the row's natural key, in its own transaction: a retried job (or two
attempts at once) updates its rows, never duplicates them. Database errors become
:class:`~gabay.errors.StoreUnavailable`, which a job lets Dramatiq retry. The schema is checked
once per store before the first use (and migrated there for the embedded SQLite file).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, cast

from sqlalchemy import Connection, Engine, RowMapping, Table, delete, func, select, update
from sqlalchemy.exc import DBAPIError

from gabay.errors import GabayError, StoreUnavailable
from gabay.jobs import LLMCall
from gabay.settings import Settings
from gabay.store.engine import build_engine, is_embedded
from gabay.store.records import (
    ActivityRow,
    DigestClaim,
    ExamFacts,
    ExamOverview,
    Forgotten,
    QuestionFacts,
    StoredAnalytics,
    StoredReport,
    SubmissionFacts,
    TeacherFacts,
)
from gabay.store.schema import prepare_schema, unavailable
from gabay.store.tables import (
    DigestRun,
    EmailFailure,
    Exam,
    ExamAnalytics,
    ExamReportFile,
    LedgerEntry,
    QuestionResult,
    Submission,
    Teacher,
)
from gabay.store.upsert import insert_absent, upsert

EXAMS = cast(Table, Exam.__table__)
SUBMISSIONS = cast(Table, Submission.__table__)
QUESTIONS = cast(Table, QuestionResult.__table__)
LEDGER = cast(Table, LedgerEntry.__table__)
ANALYTICS = cast(Table, ExamAnalytics.__table__)
TEACHERS = cast(Table, Teacher.__table__)
REPORTS = cast(Table, ExamReportFile.__table__)
DIGESTS = cast(Table, DigestRun.__table__)
FAILURES = cast(Table, EmailFailure.__table__)


def utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC (naive means UTC): SQLite keeps no offset, so every time is stored in UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ResultsStore:
    """Reads and writes the results database through ``engine``; safe across threads.

    ``auto_upgrade``: migrate an old schema before the first use (the embedded SQLite); otherwise
    an old schema raises SchemaOutdated.
    """

    def __init__(self, engine: Engine, *, auto_upgrade: bool = False) -> None:
        self.engine = engine
        self.auto_upgrade = auto_upgrade
        self._ready = False
        self._ready_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ResultsStore:
        return cls(build_engine(settings), auto_upgrade=is_embedded(settings))

    def ready(self) -> str:
        """Check (or, embedded, migrate) the schema; once per store. Returns the revision."""
        with self._ready_lock:
            revision = prepare_schema(self.engine, auto_upgrade=self.auto_upgrade)
            self._ready = True
            return revision

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        if not self._ready:
            self.ready()
        try:
            with self.engine.begin() as connection:
                yield connection
        except DBAPIError as exc:
            raise StoreUnavailable(unavailable(exc)) from None

    # -- writes -----------------------------------------------------------------------------------

    def record_exam(self, exam: ExamFacts) -> None:
        """The exam as last seen (title, teacher, answer key version), keyed by form id."""
        with self._transaction() as connection:
            upsert(connection, EXAMS, {**asdict(exam), "updated_at": _now()}, key=["form_id"])

    def record_submission(self, submission: SubmissionFacts) -> dict[str, str]:
        """The graded submission and its email state, keyed by response id; its exam first.

        Returns the link kept on the job record: ``{"table": "submissions", "key": response_id}``.
        """
        values = asdict(submission)
        form_id = values.pop("form_id")
        values["submitted_at"] = utc(submission.submitted_at)
        with self._transaction() as connection:
            exam_id = connection.execute(select(Exam.id).where(Exam.form_id == form_id)).scalar()
            if exam_id is None:
                raise GabayError(f"exam {form_id!r} is not recorded; record_exam comes first")
            upsert(connection, SUBMISSIONS, {**values, "exam_id": exam_id, "recorded_at": _now(),
                                             "anonymised_at": None}, key=["response_id"])
        return {"table": "submissions", "key": submission.response_id}

    def record_question_result(self, result: QuestionFacts) -> dict[str, str]:
        """The outcome of a question request, keyed by request id; returns the job record's link."""
        with self._transaction() as connection:
            upsert(connection, QUESTIONS, {**asdict(result), "recorded_at": _now()}, key=["request_id"])
        return {"table": "question_results", "key": result.request_id}

    def record_calls(self, job_id: str, calls: Sequence[LLMCall],
                     stage_started: Mapping[str, float] | None = None) -> None:
        """The job's LLM calls as the ledger rows (job id, call index); rows past them are removed.

        The job record keeps no time per call: ``at`` is the start of the call's stage
        (``stage_started``: stage -> epoch seconds), else now.
        """
        starts = stage_started or {}
        with self._transaction() as connection:
            for index, call in enumerate(calls):
                started = starts.get(call.stage)
                at = dt.datetime.fromtimestamp(started, dt.UTC) if started is not None else _now()
                upsert(connection, LEDGER, {
                    "job_id": job_id, "call_index": index, "stage": call.stage,
                    "provider": call.provider, "model": call.model,
                    "input_tokens": call.prompt_tokens, "cached_tokens": call.cached_tokens,
                    "output_tokens": call.completion_tokens, "cost_usd": call.cost_usd,
                    "ok": call.ok, "at": at,
                }, key=["job_id", "call_index"])
            connection.execute(delete(LEDGER).where(LedgerEntry.job_id == job_id,
                                                    LedgerEntry.call_index >= len(calls)))

    def record_analytics(self, form_id: str, report: Mapping[str, Any], submissions: int,
                         computed_at: dt.datetime | None = None) -> StoredAnalytics:
        """The exam's analytics report (an ``ExamReport`` dump), replacing the previous one."""
        stored = StoredAnalytics(form_id=form_id, report=dict(report), submissions=submissions,
                                 computed_at=utc(computed_at) if computed_at else _now())
        with self._transaction() as connection:
            upsert(connection, ANALYTICS, asdict(stored), key=["form_id"])
        return stored

    # -- reads ------------------------------------------------------------------------------------

    def exam_grades(self, form_id: str) -> list[dict[str, Any]]:
        """The stored grades (``Grade`` dumps) of the exam's submissions that are not anonymised."""
        query = (select(Submission.grade).join(EXAMS, Exam.id == Submission.exam_id)
                 .where(Exam.form_id == form_id, Submission.anonymised_at.is_(None),
                        Submission.grade.is_not(None))
                 .order_by(Submission.response_id))
        with self._transaction() as connection:
            return [grade for grade in connection.execute(query).scalars() if isinstance(grade, dict)]

    def graded_submissions(self, form_id: str) -> list[dict[str, Any]]:
        """``response_id``, ``answers`` and ``grade`` of the exam's graded, not anonymised submissions."""
        query = (select(Submission.response_id, Submission.answers, Submission.grade)
                 .join(EXAMS, Exam.id == Submission.exam_id)
                 .where(Exam.form_id == form_id, Submission.anonymised_at.is_(None),
                        Submission.grade.is_not(None))
                 .order_by(Submission.response_id))
        with self._transaction() as connection:
            return [dict(row) for row in connection.execute(query).mappings()]

    def record_regrade(self, response_id: str, grade: Mapping[str, Any], *, earned: float,
                       possible: float, pending_points: float, answer_key_version: str) -> None:
        """A new grade version of a stored submission (its email state is left as it is)."""
        percent = round(100 * earned / possible) if possible else None
        with self._transaction() as connection:
            connection.execute(update(SUBMISSIONS).where(Submission.response_id == response_id).values(
                grade=dict(grade), earned=earned, possible=possible, pending_points=pending_points,
                percent=percent, answer_key_version=answer_key_version, recorded_at=_now()))

    def analytics(self, form_id: str) -> StoredAnalytics | None:
        """The exam's latest analytics report, None when none was computed."""
        with self._transaction() as connection:
            row = connection.execute(select(ANALYTICS).where(ExamAnalytics.form_id == form_id)
                                     ).mappings().first()
        if row is None:
            return None
        return StoredAnalytics(form_id=row["form_id"], report=row["report"],
                               submissions=row["submissions"], computed_at=utc(row["computed_at"]))

    def exam_overviews(self) -> list[ExamOverview]:
        """Every exam with its stored submissions and its analytics' count and time, by form id."""
        stored = (select(Submission.exam_id, func.count().label("n"))
                  .group_by(Submission.exam_id).subquery())
        query = (select(Exam.form_id, Exam.title, Exam.subject, stored.c.n,
                        ExamAnalytics.submissions, ExamAnalytics.computed_at)
                 .outerjoin(stored, stored.c.exam_id == Exam.id)
                 .outerjoin(ANALYTICS, ExamAnalytics.form_id == Exam.form_id)
                 .order_by(Exam.form_id))
        with self._transaction() as connection:
            rows = connection.execute(query).all()
        return [ExamOverview(form_id=form_id, title=title, subject=subject,
                             submissions_stored=int(n or 0), submissions_counted=counted,
                             computed_at=utc(at) if at is not None else None)
                for form_id, title, subject, n, counted, at in rows]

    def exam(self, form_id: str) -> dict[str, Any] | None:
        with self._transaction() as connection:
            row = connection.execute(select(EXAMS).where(Exam.form_id == form_id)).mappings().first()
        return dict(row) if row is not None else None

    def submission(self, response_id: str) -> dict[str, Any] | None:
        """The stored submission (with its exam's ``form_id``), None when not stored."""
        query = (select(SUBMISSIONS, Exam.form_id).join(EXAMS, Exam.id == Submission.exam_id)
                 .where(Submission.response_id == response_id))
        with self._transaction() as connection:
            row = connection.execute(query).mappings().first()
        return dict(row) if row is not None else None

    def question_result(self, request_id: str) -> dict[str, Any] | None:
        with self._transaction() as connection:
            row = connection.execute(select(QUESTIONS).where(QuestionResult.request_id == request_id)
                                     ).mappings().first()
        return dict(row) if row is not None else None

    def calls(self, job_id: str) -> list[dict[str, Any]]:
        """The ledger rows of a job, in call order."""
        query = select(LEDGER).where(LedgerEntry.job_id == job_id).order_by(LedgerEntry.call_index)
        with self._transaction() as connection:
            return [dict(row) for row in connection.execute(query).mappings()]

    def counts(self) -> dict[str, int]:
        """Rows per table (for the CLI and tests)."""
        with self._transaction() as connection:
            return {table.name: int(connection.execute(select(func.count()).select_from(table)).scalar() or 0)
                    for table in (EXAMS, SUBMISSIONS, QUESTIONS, LEDGER)}

    # -- personal data ----------------------------------------------------------------------------

    def forget_student(self, student_id: str) -> list[Forgotten]:
        """Delete the student's submissions; return what else belonged to them (jobs, files)."""
        query = select(Submission.response_id, Submission.job_id, Submission.outbox_file).where(
            Submission.student_id == student_id)
        with self._transaction() as connection:
            rows = [Forgotten(*row) for row in connection.execute(query).all()]
            connection.execute(delete(SUBMISSIONS).where(Submission.student_id == student_id))
        return rows

    def anonymise_before(self, cutoff: dt.datetime) -> int:
        """Anonymise submissions submitted before ``cutoff``: no student id, answers or feedback.

        Grades, totals and the exam stay, for statistics. Returns the number of rows changed.
        """
        change = (update(SUBMISSIONS)
                  .where(Submission.submitted_at < utc(cutoff), Submission.anonymised_at.is_(None))
                  .values(student_id=None, answers=None, feedback_summary=None, email_message_id=None,
                          outbox_file=None, anonymised_at=_now()))
        with self._transaction() as connection:
            return connection.execute(change).rowcount

    # -- teachers, reports and digests ------------------------------------------------------------

    def record_teacher(self, teacher: TeacherFacts) -> None:
        """The teacher's address and name as the latest submission gives them (their settings kept)."""
        values = {**asdict(teacher), "time_zone": None, "digests_opt_out": False, "updated_at": _now()}
        with self._transaction() as connection:
            upsert(connection, TEACHERS, values, key=["teacher_id"], keep=["time_zone", "digests_opt_out"])

    def teacher(self, teacher_id: str) -> dict[str, Any] | None:
        with self._transaction() as connection:
            row = connection.execute(select(TEACHERS).where(Teacher.teacher_id == teacher_id)
                                     ).mappings().first()
        return dict(row) if row is not None else None

    def teachers(self) -> list[dict[str, Any]]:
        """Every teacher, by id (with their address: for the digests, never for a log)."""
        with self._transaction() as connection:
            return [dict(row) for row in
                    connection.execute(select(TEACHERS).order_by(Teacher.teacher_id)).mappings()]

    def set_teacher_preferences(self, teacher_id: str, *, digests_opt_out: bool | None = None,
                                time_zone: str | None = None) -> None:
        """Change a teacher's digest settings; a teacher not seen yet is kept with no address."""
        with self._transaction() as connection:
            insert_absent(connection, TEACHERS, {"teacher_id": teacher_id, "email": None, "name": None,
                                                 "time_zone": None, "digests_opt_out": False,
                                                 "updated_at": _now()}, key=["teacher_id"])
            changes: dict[str, Any] = {"updated_at": _now()}
            if digests_opt_out is not None:
                changes["digests_opt_out"] = digests_opt_out
            if time_zone is not None:
                changes["time_zone"] = time_zone or None
            connection.execute(update(TEACHERS).where(Teacher.teacher_id == teacher_id).values(**changes))

    def record_report(self, report: StoredReport) -> StoredReport:
        """The report's file, keyed by report id; a rewrite keeps the row's email state and creation."""
        values = {**asdict(report), "analytics_computed_at": utc(report.analytics_computed_at),
                  "created_at": _now(), "sent_at": None}
        with self._transaction() as connection:
            upsert(connection, REPORTS, values, key=["report_id"],
                   keep=["email_state", "email_via", "email_message_id", "outbox_file", "sent_at",
                         "created_at"])
        stored = self.report(report.report_id)
        assert stored is not None
        return stored

    def report(self, report_id: str) -> StoredReport | None:
        with self._transaction() as connection:
            row = connection.execute(select(REPORTS).where(ExamReportFile.report_id == report_id)
                                     ).mappings().first()
        return _stored_report(row) if row is not None else None

    def reports(self, form_id: str) -> list[StoredReport]:
        """The exam's reports, oldest first."""
        query = select(REPORTS).where(ExamReportFile.form_id == form_id).order_by(ExamReportFile.id)
        with self._transaction() as connection:
            return [_stored_report(row) for row in connection.execute(query).mappings()]

    def mark_report_sent(self, report_id: str, *, via: str, message_id: str | None,
                         outbox_file: str | None) -> None:
        change = (update(REPORTS).where(ExamReportFile.report_id == report_id)
                  .values(email_state="sent", email_via=via, email_message_id=message_id,
                          outbox_file=outbox_file, sent_at=_now()))
        with self._transaction() as connection:
            connection.execute(change)

    def exam_students(self, form_id: str) -> list[dict[str, Any]]:
        """The exam's graded, not anonymised submissions: response, student and job ids, time, grade."""
        query = (select(Submission.response_id, Submission.student_id, Submission.job_id,
                        Submission.submitted_at, Submission.grade)
                 .join(EXAMS, Exam.id == Submission.exam_id)
                 .where(Exam.form_id == form_id, Submission.anonymised_at.is_(None),
                        Submission.grade.is_not(None))
                 .order_by(Submission.response_id))
        with self._transaction() as connection:
            return [{**row, "submitted_at": utc(row["submitted_at"])}
                    for row in connection.execute(query).mappings()]

    def exams_due_report(self) -> list[str]:
        """Form ids of the exams whose analytics are newer than their last report (or have none)."""
        latest = (select(ExamReportFile.form_id, func.max(ExamReportFile.analytics_computed_at).label("at"))
                  .group_by(ExamReportFile.form_id).subquery())
        query = (select(ExamAnalytics.form_id, ExamAnalytics.computed_at, latest.c.at)
                 .outerjoin(latest, latest.c.form_id == ExamAnalytics.form_id)
                 .order_by(ExamAnalytics.form_id))
        with self._transaction() as connection:
            rows = connection.execute(query).all()
        return [form_id for form_id, computed, reported in rows
                if reported is None or utc(computed) > utc(reported)]

    def claim_digest(self, teacher_id: str, period: str, period_start: dt.datetime,
                     job_id: str) -> DigestClaim:
        """The digest row of (teacher, period, start), inserted as ``claimed`` when there is none."""
        start = utc(period_start)
        where = (DigestRun.teacher_id == teacher_id, DigestRun.period == period,
                 DigestRun.period_start == start)
        with self._transaction() as connection:
            claimed = insert_absent(connection, DIGESTS, {
                "teacher_id": teacher_id, "period": period, "period_start": start, "state": "claimed",
                "job_id": job_id, "claimed_at": _now()}, key=["teacher_id", "period", "period_start"])
            row = connection.execute(select(DigestRun.state, DigestRun.job_id).where(*where)).one()
        return DigestClaim(teacher_id, period, start, row.state, row.job_id, claimed)

    def finish_digest(self, teacher_id: str, period: str, period_start: dt.datetime, state: str, *,
                      via: str | None = None, message_id: str | None = None,
                      outbox_file: str | None = None) -> None:
        """Record how a claimed digest ended: ``sent``, ``empty`` or ``opted_out``."""
        change = (update(DIGESTS)
                  .where(DigestRun.teacher_id == teacher_id, DigestRun.period == period,
                         DigestRun.period_start == utc(period_start))
                  .values(state=state, email_via=via, email_message_id=message_id,
                          outbox_file=outbox_file, finished_at=_now()))
        with self._transaction() as connection:
            connection.execute(change)

    def digests(self, teacher_id: str | None = None) -> list[dict[str, Any]]:
        """The digest rows (of one teacher), oldest period first."""
        query = select(DIGESTS).order_by(DigestRun.period_start, DigestRun.teacher_id, DigestRun.period)
        if teacher_id is not None:
            query = query.where(DigestRun.teacher_id == teacher_id)
        with self._transaction() as connection:
            return [{**row, "period_start": utc(row["period_start"])}
                    for row in connection.execute(query).mappings()]

    def digest_keys(self, period: str, since: dt.datetime) -> set[tuple[str, dt.datetime]]:
        """(teacher id, period start) of the rows of ``period`` starting at ``since`` or later."""
        query = select(DigestRun.teacher_id, DigestRun.period_start).where(
            DigestRun.period == period, DigestRun.period_start >= utc(since))
        with self._transaction() as connection:
            return {(teacher, utc(start)) for teacher, start in connection.execute(query).all()}

    def teacher_activity(self, teacher_id: str, start: dt.datetime, end: dt.datetime) -> list[ActivityRow]:
        """The submissions to the teacher's exams submitted in ``[start, end)``."""
        query = (select(Exam.form_id, Exam.title, Submission.percent, Submission.email_state,
                        Submission.submitted_at)
                 .join(EXAMS, Exam.id == Submission.exam_id)
                 .where(Exam.teacher_id == teacher_id, Submission.submitted_at >= utc(start),
                        Submission.submitted_at < utc(end))
                 .order_by(Exam.form_id, Submission.submitted_at))
        with self._transaction() as connection:
            return [ActivityRow(form_id, title, percent, state, utc(at))
                    for form_id, title, percent, state, at in connection.execute(query).all()]

    def record_email_failure(self, response_id: str, form_id: str, teacher_id: str | None, kind: str) -> None:
        """A feedback email that failed for good (ids only), keyed by response id."""
        values = {"response_id": response_id, "form_id": form_id, "teacher_id": teacher_id, "kind": kind,
                  "failed_at": _now()}
        with self._transaction() as connection:
            upsert(connection, FAILURES, values, key=["response_id"])

    def email_failures_between(self, teacher_id: str, start: dt.datetime, end: dt.datetime) -> int:
        """The teacher's feedback emails that failed for good in ``[start, end)`` and were not sent since."""
        sent = select(Submission.response_id).where(Submission.email_state == "sent")
        query = select(func.count()).select_from(FAILURES).where(
            EmailFailure.teacher_id == teacher_id, EmailFailure.failed_at >= utc(start),
            EmailFailure.failed_at < utc(end), EmailFailure.response_id.not_in(sent))
        with self._transaction() as connection:
            return int(connection.execute(query).scalar() or 0)

    def questions_between(self, start: dt.datetime, end: dt.datetime) -> list[tuple[int, int]]:
        """(accepted, rejected) of each question request recorded in ``[start, end)``."""
        query = select(QuestionResult.accepted, QuestionResult.rejected).where(
            QuestionResult.recorded_at >= utc(start), QuestionResult.recorded_at < utc(end))
        with self._transaction() as connection:
            return [(len(accepted or []), len(rejected or []))
                    for accepted, rejected in connection.execute(query).all()]

    def dispose(self) -> None:
        """Close the engine's pooled connections."""
        self.engine.dispose()


def _stored_report(row: RowMapping) -> StoredReport:
    return StoredReport(
        report_id=row["report_id"], form_id=row["form_id"], teacher_id=row["teacher_id"],
        analytics_computed_at=utc(row["analytics_computed_at"]), path=row["path"],
        size_bytes=row["size_bytes"], email_state=row["email_state"], email_via=row["email_via"],
        email_message_id=row["email_message_id"], outbox_file=row["outbox_file"])
