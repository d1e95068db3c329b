"""An exam in the results store as the report and digest workers find it: a teacher with an
address, the exam with its answer key, six graded submissions (tests/support/analytics_data.py),
their feedback job records (the address each email went to) and the exam's analytics."""

from __future__ import annotations

import datetime as dt

import redis

from gabay.analytics.report import analyse_exam
from gabay.jobs import JobStore
from gabay.settings import Settings
from gabay.store.identity import person_id
from gabay.store.records import ExamFacts, StoredAnalytics, SubmissionFacts, TeacherFacts
from gabay.store.results import ResultsStore
from tests.support import analytics_data

TEACHER_EMAIL = "reyes@school.example"
TEACHER_NAME = "Ms. Reyes"
TEACHER_ID = person_id(TEACHER_EMAIL)
TITLE = "Photosynthesis check"
FORM_ID = analytics_data.KEY["exam_id"]


def student_address(response_id: str) -> str:
    return f"student.{response_id}@student.example"


def seed_teacher(store: ResultsStore, email: str = TEACHER_EMAIL, name: str = TEACHER_NAME) -> str:
    store.record_teacher(TeacherFacts(person_id(email), email, name))
    return person_id(email)


def seed_exam(store: ResultsStore, *, submitted_at: dt.datetime, form_id: str = FORM_ID, title: str = TITLE,
              teacher_email: str | None = TEACHER_EMAIL, client: redis.Redis | None = None,
              settings: Settings | None = None, computed_at: dt.datetime | None = None) -> StoredAnalytics:
    """The exam of ``analytics_data`` under ``form_id``, its six submissions and its analytics.

    With ``client`` and ``settings`` each submission also gets its feedback job record.
    """
    teacher_id = seed_teacher(store, teacher_email) if teacher_email else None
    key = analytics_data.key({**analytics_data.KEY, "exam_id": form_id})
    grades = analytics_data.graded({**analytics_data.KEY, "exam_id": form_id})
    store.record_exam(ExamFacts(form_id=form_id, title=title, subject="Biology", teacher_id=teacher_id,
                                answer_key_version="k-test", answer_key=key.model_dump(mode="json")))
    jobs = JobStore(client, settings) if client is not None and settings is not None else None
    for index, grade in enumerate(grades):
        response_id = f"{form_id}-{grade.response_id}"
        job_id = f"fb-test-{response_id}"
        student_id = person_id(student_address(grade.response_id))
        store.record_submission(SubmissionFacts(
            response_id=response_id, form_id=form_id, student_id=student_id,
            submitted_at=submitted_at + dt.timedelta(minutes=index), language="en", answers=[], grades=[],
            earned=grade.points, possible=grade.max_points, pending_points=0.0,
            percent=round(grade.percent or 0), feedback_summary=None, feedback_source="offline",
            job_id=job_id, answer_key_version="k-test",
            grade=grade.model_copy(update={"response_id": response_id}).model_dump(mode="json")))
        if jobs is not None:
            jobs.create("feedback", job_id)
            jobs.succeed(job_id, {"to": student_address(grade.response_id)})
    report = analyse_exam(key, grades)
    return store.record_analytics(form_id, report.model_dump(mode="json"), len(grades), computed_at)
