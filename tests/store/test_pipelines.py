"""The pipelines write their results to the store once, after the email; a store outage retries
the write without sending the email again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from gabay.errors import StoreUnavailable
from gabay.feedback.pipeline import FeedbackContext, process
from gabay.feedback.submission import job_id_for
from gabay.jobs import JobStatus, JobStore
from gabay.questions.models import parse_request
from gabay.questions.stages import QuestionStages
from gabay.questions.stored import UNSTORED
from gabay.settings import Settings
from gabay.store.identity import person_id
from gabay.store.results import ResultsStore
from tests.fakes.brevo_server import FakeBrevo
from tests.support.feedback_samples import sample

DOCUMENT = Path(__file__).resolve().parents[2] / "examples" / "documents" / "photosynthesis.md"


def test_a_sent_submission_is_stored_with_its_exam_calls_and_email_state(
        redis_client: redis.Redis, store: ResultsStore, store_settings: Callable[..., Settings]) -> None:
    ctx = FeedbackContext.build(store_settings(), redis_client, results=store)

    result = process(ctx, sample("mixed-score"))

    record = ctx.store.get(job_id_for("resp-0002"))
    assert record.details["stored"] == {"table": "submissions", "key": "resp-0002"}
    row = store.submission("resp-0002")
    assert row is not None and row["job_id"] == record.id
    assert (row["earned"], row["possible"], row["percent"]) == (3, 5, 60)
    assert [g["outcome"] for g in row["grades"]].count("right") == 3
    assert row["email_state"] == "sent" and row["email_via"] == "outbox"
    assert row["outbox_file"] == Path(result["outbox_path"]).name
    assert row["student_id"] == person_id("jose.delacruz@student.example")
    assert "[student]" in row["feedback_summary"] and row["feedback_source"] == "offline"
    assert row["answer_key_version"].startswith("k-")
    exam = store.exam("form-bio-7-photosynthesis")
    assert exam is not None and exam["teacher_id"] == person_id("reyes@school.example")
    assert [(c["provider"], c["stage"]) for c in store.calls(record.id)] == [("offline", "feedback")]
    stored_text = json.dumps([row, exam], default=str)
    assert "@" not in stored_text and "Jose" not in stored_text and "Reyes" not in stored_text


def test_a_store_outage_after_the_send_retries_the_write_and_never_the_email(
        redis_client: redis.Redis, store: ResultsStore, store_settings: Callable[..., Settings],
        make_store: Callable[[Settings], ResultsStore], down_url: str, brevo: FakeBrevo) -> None:
    settings = store_settings(brevo_api_key=brevo.api_key, brevo_base_url=brevo.base_url, brevo_timeout=2)
    broken = make_store(store_settings(database_url=down_url))
    down = FeedbackContext.build(settings, redis_client, results=broken)
    job_id = job_id_for("resp-0004")

    with pytest.raises(StoreUnavailable):
        process(down, sample("tagalog"), final_attempt=False)

    assert len(brevo.accepted) == 1  # the email went out before the write
    record = down.store.get(job_id)
    assert record.status is JobStatus.QUEUED and "results database failed" in (record.error or "")
    assert "stored" not in record.details

    up = FeedbackContext.build(settings, redis_client, results=store)
    for _ in range(2):  # the retry, then a duplicate delivery
        result = process(up, sample("tagalog"), final_attempt=False)

    assert len(brevo.accepted) == 1
    assert result["message_id"] == brevo.accepted[0]["messageId"]
    record = up.store.get(job_id)
    assert record.status is JobStatus.SUCCEEDED
    assert record.details["stored"] == {"table": "submissions", "key": "resp-0004"}
    row = store.submission("resp-0004")
    assert row is not None and row["email_via"] == "brevo"
    assert row["email_message_id"] == brevo.accepted[0]["messageId"]
    assert store.counts()["submissions"] == 1
    assert len(store.calls(job_id)) == len(record.calls) == 1


def test_a_question_result_is_stored_once_and_a_retry_does_not_validate_again(
        redis_client: redis.Redis, store: ResultsStore, store_settings: Callable[..., Settings],
        make_store: Callable[[Settings], ResultsStore], down_url: str) -> None:
    settings = store_settings()
    jobs = JobStore(redis_client, settings)
    jobs.create("questions", "lesson-42")
    request = parse_request({"request_id": "lesson-42", "count": 3, "document": {
        "id": "photosynthesis", "title": "Photosynthesis", "text": DOCUMENT.read_text()}})
    down = QuestionStages(jobs, settings, results=make_store(store_settings(database_url=down_url)))

    task = down.validate(down.draft(down.retrieve("lesson-42", request)))
    concluded = down.conclude(task)
    with pytest.raises(StoreUnavailable):
        down.succeed("lesson-42", *concluded)
    calls_before_retry = len(jobs.get("lesson-42").calls)

    up = QuestionStages(jobs, settings, results=store)
    kept = up.unstored("lesson-42")  # what the retried validation message finds
    assert kept is not None and kept[0] == concluded[0]
    up.succeed("lesson-42", *kept)
    up.succeed("lesson-42", *kept)  # idempotent

    record = jobs.get("lesson-42")
    assert record.status is JobStatus.SUCCEEDED and UNSTORED not in record.details
    assert record.details["stored"] == {"table": "question_results", "key": "lesson-42"}
    assert len(record.calls) == calls_before_retry
    assert up.unstored("lesson-42") is None  # a late duplicate does nothing
    row = store.question_result("lesson-42")
    assert row is not None and row["document_id"] == "photosynthesis"
    assert [a["question"]["id"] for a in row["accepted"]] == [q.id for q in concluded[0].questions]
    checks = ["structure", "duplicates", "item-writing flaws", "blind round trip",
              "answer supported by its passage"]
    for accepted in row["accepted"]:  # the verdict with the question's scores (the quality gate)
        verdict = accepted["verdict"]
        assert {k: verdict[k] for k in ("ok", "by", "checks")} == {
            "ok": True, "by": "offline:extractive-v1", "checks": checks}
        assert verdict["flaws"] == [] and verdict["level"] == accepted["question"]["bloom_level"]
        assert verdict["round_trip"]["agreed"] is True and verdict["round_trip"]["by"] == "offline"
    assert [r["reason"] for r in row["rejected"]] == [r.reason for r in task.rejected]
    assert [c["stage"] for c in store.calls("lesson-42")] == [c.stage for c in record.calls]
    assert store.counts()["question_results"] == 1
