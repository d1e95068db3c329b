"""Exam analytics in the results store, on SQLite and PostgreSQL: revision 0003, the grade and key
the feedback pipeline writes, the debounced request, and the report's upsert."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import pytest
import redis
from sqlalchemy import func, select, text

from gabay.actors.analytics import refresh_exam_analytics
from gabay.feedback.analytics_request import ANALYSE_ACTOR, PENDING_GRACE_SECONDS, AnalyticsRequests
from gabay.feedback.graded import grade_once
from gabay.feedback.pipeline import FeedbackContext, enqueue_record, process
from gabay.feedback.submission import parse_submission
from gabay.grading.key import parse_answer_key
from gabay.queues import ANALYTICS
from gabay.settings import Settings
from gabay.store.engine import build_engine
from gabay.store.results import ANALYTICS as ANALYTICS_TABLE
from gabay.store.results import ResultsStore
from gabay.store.schema import HEAD_REVISION, upgrade
from tests.support.exam_samples import FORM_ID, exam_submissions, expected_points
from tests.support.feedback_samples import sample


class Recorder:
    """An enqueue that keeps the messages (no worker runs in these tests)."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, int | None]] = []

    def __call__(self, message: Any, *, delay: int | None = None) -> None:
        self.sent.append((message, delay))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def ctx(redis_client: redis.Redis, store: ResultsStore, store_settings: Callable[..., Settings],
        recorder: Recorder) -> FeedbackContext:
    return FeedbackContext.build(store_settings(), redis_client, results=store, enqueue=recorder)


def test_revision_0003_adds_the_grade_the_key_and_the_analytics_table(
        store_settings: Callable[..., Settings]) -> None:
    engine = build_engine(store_settings())
    try:
        upgrade(engine, "0002_answer_key_version")
        with engine.begin() as connection:
            at = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
            connection.execute(text(
                "INSERT INTO exams (form_id, title, subject, answer_key_version, updated_at) "
                "VALUES ('form-1', 'Quiz', 'Biology', 'k-1', :at)"), {"at": at})
            connection.execute(text(
                "INSERT INTO submissions (response_id, exam_id, student_id, submitted_at, language, "
                "grades, earned, possible, pending_points, feedback_source, email_state, job_id, "
                "recorded_at) VALUES ('resp-old', 1, 'st-1', :at, 'en', '[]', 1, 2, 0, 'offline', "
                "'sent', 'fb-1', :at)"), {"at": at})

        assert upgrade(engine) == HEAD_REVISION  # through 0003_exam_analytics
        store = ResultsStore(engine)
        row = store.submission("resp-old")
        assert row is not None and row["grade"] is None and row["earned"] == 1
        exam = store.exam("form-1")
        assert exam is not None and exam["answer_key"] is None
        assert store.analytics("form-1") is None and store.exam_grades("form-1") == []
        [overview] = store.exam_overviews()
        assert (overview.form_id, overview.submissions_stored, overview.submissions_counted,
                overview.computed_at) == ("form-1", 1, None, None)
        assert refresh_exam_analytics(store, "form-1") is None  # no key stored: nothing to analyse
    finally:
        engine.dispose()


def test_the_pipeline_stores_the_grade_and_key_and_asks_for_analytics_once(
        ctx: FeedbackContext, store: ResultsStore, recorder: Recorder, redis_client: redis.Redis) -> None:
    for data in exam_submissions(3):
        process(ctx, data)

    rows = [store.submission(f"resp-an-{n}") for n in (1, 2, 3)]
    assert [r["grade"]["points"] for r in rows if r] == expected_points(3)
    assert all(r and r["grade"]["status"] == "complete" and r["grade"]["version"] == 1 for r in rows)
    exam = store.exam(FORM_ID)
    assert exam is not None
    key = parse_answer_key(exam["answer_key"])
    assert all(r and r["grade"]["answer_key_digest"] == key.digest() for r in rows)

    [(message, delay)] = recorder.sent  # debounced: one analysis for three submissions
    assert (message.queue_name, message.actor_name, message.args) == (ANALYTICS, ANALYSE_ACTOR, (FORM_ID,))
    assert delay == 30_000
    pending = ctx.settings.keys.analytics_pending(FORM_ID)
    assert 30 < redis_client.ttl(pending) <= 30 + PENDING_GRACE_SECONDS

    redis_client.delete(pending)  # what the actor does first: the next submission asks again
    process(ctx, exam_submissions(4)[3])
    assert len(recorder.sent) == 2


def test_the_grade_kept_on_the_job_record_is_the_one_stored(
        ctx: FeedbackContext, store: ResultsStore) -> None:
    data = sample("mixed-score")
    for answer in data["answers"]:
        answer.pop("points")  # code must grade it: the grade is kept on the job record
    submission = parse_submission(data)
    job_id = enqueue_record(ctx, submission)
    kept = grade_once(ctx.settings, ctx.store, job_id, submission)
    ctx.store.update(job_id, lambda r: r.details.__setitem__(
        "grade", kept.model_copy(update={"version": 7}).model_dump(mode="json")))

    process(ctx, data)

    row = store.submission("resp-0002")
    assert row is not None and row["grade"]["version"] == 7 and row["grade"]["points"] == 3


def test_a_teachers_points_for_an_essay_are_the_grades_overrides(
        ctx: FeedbackContext, store: ResultsStore) -> None:
    data = sample("with-open-question")
    data["answers"][5]["points"] = 1.5  # q6 has no key: the teacher marked it

    process(ctx, data)

    row = store.submission("resp-0005")
    assert row is not None
    q6 = next(i for i in row["grade"]["items"] if i["question_id"] == "q6")
    assert (q6["points"], q6["source"], row["grade"]["status"]) == (1.5, "teacher", "complete")
    assert row["grade"]["points"] == 6.5
    assert len(parse_answer_key(store.exam(FORM_ID)["answer_key"]).items) == 6  # type: ignore[index]


def test_the_report_upsert_is_idempotent_and_counts_only_current_not_anonymised_grades(
        ctx: FeedbackContext, store: ResultsStore) -> None:
    submissions = exam_submissions(5)
    submissions[4]["submitted_at"] = "2026-01-02T08:00:00Z"  # the one retention anonymises
    for data in submissions:
        process(ctx, data)

    first = refresh_exam_analytics(store, FORM_ID)
    again = refresh_exam_analytics(store, FORM_ID)

    assert first is not None and again is not None
    assert first.submissions == again.submissions == 5
    assert first.report == again.report and again.report["summary"]["count"] == 5
    assert again.computed_at >= first.computed_at
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ANALYTICS_TABLE)).scalar() == 1
    stored = store.analytics(FORM_ID)
    assert stored is not None and stored.report == again.report

    assert store.anonymise_before(dt.datetime(2026, 6, 1, tzinfo=dt.UTC)) == 1
    after = refresh_exam_analytics(store, FORM_ID)
    assert after is not None and after.submissions == 4 and after.report["summary"]["count"] == 4
    assert after.report["summary"]["mean"]["value"] == pytest.approx(sum(expected_points(4)) / 4)

    changed = exam_submissions(6)[5]
    changed["answers"][0]["correct_answer"] = "Stroma"  # a new key: older grades no longer count
    process(ctx, changed)
    latest = refresh_exam_analytics(store, FORM_ID)
    assert latest is not None and latest.submissions == 1
    [overview] = store.exam_overviews()
    assert (overview.submissions_stored, overview.submissions_counted) == (6, 1)
    assert "Jose" not in str(latest.report) and "@" not in str(latest.report)


def test_a_redis_error_asking_for_analytics_fails_no_job_and_is_logged_once(
        ctx: FeedbackContext, store: ResultsStore, recorder: Recorder,
        caplog: pytest.LogCaptureFixture) -> None:
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    broken = dataclasses.replace(ctx, analytics=AnalyticsRequests(down, ctx.settings, recorder))

    with caplog.at_level(logging.WARNING, logger="gabay.feedback.analytics_request"):
        results = [process(broken, data) for data in exam_submissions(2)]

    assert [r["response_id"] for r in results] == ["resp-an-1", "resp-an-2"]
    assert store.submission("resp-an-2") is not None and recorder.sent == []
    warnings = [r for r in caplog.records if r.name == "gabay.feedback.analytics_request"]
    assert len(warnings) == 1 and "not requested" in warnings[0].getMessage()
