"""The report worker in real dramatiq processes: four graded submissions with their teacher go
through the feedback and analytics workers; ``send_exam_report.send(form_id)`` then emails the
teacher one PDF whose figures and students are the stored ones, and asking again sends nothing."""

from __future__ import annotations

import email
import email.policy
import io
from pathlib import Path
from typing import Any

import pypdf
import pytest
import redis

from gabay.actors import process_form_response, send_due_reports, send_exam_report
from gabay.broker import GabayBroker
from gabay.jobs import JobStatus
from gabay.queues import REPORTS
from gabay.settings import Settings, load_settings
from gabay.store.records import StoredAnalytics
from gabay.store.results import ResultsStore
from gabay.store.schema import upgrade
from tests.support.exam_samples import FORM_ID, exam_submissions
from tests.support.feedback_samples import EXPECTED
from tests.support.feedback_workers import wait_for_job, worker_env
from tests.support.polling import wait_for

SUBMISSIONS = 4


@pytest.mark.slow
def test_an_exams_report_reaches_its_teacher_once_with_the_stored_figures(
        start_workers: Any, tmp_path: Path, redis_client: redis.Redis, settings: Settings,
        broker: GabayBroker) -> None:
    database = f"sqlite:///{tmp_path / 'results.sqlite3'}"
    results = ResultsStore.from_settings(load_settings(database_url=database))
    upgrade(results.engine)
    outbox = tmp_path / "outbox"
    env = {**worker_env(outbox), "DATABASE_URL": database, "ANALYTICS_DEBOUNCE_SECONDS": "1",
           "GABAY_DATA_DIR": str(tmp_path / "data")}
    start_workers(processes=1, threads=4, env=env)
    try:
        for job_id in [process_form_response.send(data) for data in exam_submissions(SUBMISSIONS)]:
            wait_for_job(redis_client, settings, job_id, JobStatus.SUCCEEDED, timeout=30)

        def analysed() -> StoredAnalytics | None:
            stored = results.analytics(FORM_ID)
            return stored if stored is not None and stored.submissions == SUBMISSIONS else None

        analytics = wait_for(analysed, timeout=20, message="the exam's analytics to count four grades")
        send_exam_report.send(FORM_ID)
        wait_for(lambda: [r.email_state for r in results.reports(FORM_ID)] == ["sent"], timeout=30,
                 message="the report to be sent")
        send_exam_report.send(FORM_ID)  # asked again: nothing more
        send_due_reports.send()  # the schedule's run: this report is of the latest analytics already
        broker.join(REPORTS, timeout=30_000)

        [report] = results.reports(FORM_ID)
        assert Path(report.path).parent == tmp_path / "data" / "reports"
        reports = [p for p in outbox.glob("*.eml") if p.name.startswith("rp-")]
        assert [p.name for p in reports] == [report.outbox_file]
        message = email.message_from_bytes(reports[0].read_bytes(), policy=email.policy.default)
        assert [a.addr_spec for a in message["To"].addresses] == ["reyes@school.example"]
        [attachment] = message.iter_attachments()  # type: ignore[attr-defined]
        pdf = attachment.get_content()
        assert pdf == Path(report.path).read_bytes()
        text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
        summary = analytics.report["summary"]
        assert f"Complete submissions\n{summary['count']}" in text.replace(" \n", "\n")
        assert f"{summary['mean']['value']:.2f}" in text
        for name in ("perfect-score", "mixed-score", "all-wrong", "tagalog"):
            assert EXPECTED[name][3] in text  # each student, by the address their feedback went to
    finally:
        results.dispose()
