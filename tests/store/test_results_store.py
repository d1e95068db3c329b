"""Writes of the ResultsStore are idempotent per natural key, also when attempts run at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from gabay.errors import StoreUnavailable
from gabay.jobs import LLMCall
from gabay.settings import Settings
from gabay.store.identity import as_person_id, person_id
from gabay.store.records import ExamFacts, QuestionFacts, SubmissionFacts
from gabay.store.results import ResultsStore, utc
from gabay.store.retention import apply_retention

EXAM = ExamFacts(form_id="form-1", title="Photosynthesis Quiz", subject="Biology",
                 teacher_id=person_id("reyes@school.example"), answer_key_version="k-1")


def submission(response_id: str = "resp-1", student: str = "ana@student.example",
               submitted_at: dt.datetime = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC),
               **changes: object) -> SubmissionFacts:
    facts = SubmissionFacts(
        response_id=response_id, form_id="form-1", student_id=person_id(student),
        submitted_at=submitted_at, language="en",
        answers=[{"question_id": "q1", "type": "short_answer", "answer": "Oxygen"}],
        grades=[{"question_id": "q1", "outcome": "right", "points": 1.0, "max_points": 1.0}],
        earned=1.0, possible=1.0, pending_points=0.0, percent=100, feedback_summary="Well done.",
        feedback_source="offline", job_id=f"fb-{response_id}", answer_key_version="k-1",
        email_via="outbox", outbox_file=f"{response_id}--00000000.eml")
    return replace(facts, **changes)  # type: ignore[arg-type]


def calls(n: int) -> list[LLMCall]:
    return [LLMCall(stage="feedback", provider="openai", model="gpt-4o-mini", prompt_tokens=100 + i,
                    cached_tokens=10, completion_tokens=50, cost_usd=0.001 * (i + 1)) for i in range(n)]


def test_a_submission_written_again_is_updated_not_duplicated(store: ResultsStore) -> None:
    store.record_exam(EXAM)
    first = store.record_submission(submission())
    store.record_exam(EXAM)
    store.record_submission(submission(email_message_id="<m1@brevo>", email_via="brevo"))
    store.record_submission(submission(email_message_id="<m1@brevo>", email_via="brevo"))

    assert first == {"table": "submissions", "key": "resp-1"}
    assert store.counts() == {"exams": 1, "submissions": 1, "question_results": 0, "cost_ledger": 0}
    row = store.submission("resp-1")
    assert row is not None
    assert (row["email_via"], row["email_message_id"], row["form_id"]) == ("brevo", "<m1@brevo>", "form-1")
    assert row["grades"][0]["outcome"] == "right" and row["answers"][0]["answer"] == "Oxygen"
    assert row["student_id"] == person_id("Ana@Student.example ")


def test_an_exam_keeps_its_latest_answer_key_version(store: ResultsStore) -> None:
    store.record_exam(EXAM)
    store.record_exam(replace(EXAM, answer_key_version="k-2", title="Photosynthesis Quiz (v2)"))

    exam = store.exam("form-1")
    assert exam is not None
    assert (exam["answer_key_version"], exam["title"]) == ("k-2", "Photosynthesis Quiz (v2)")
    assert store.counts()["exams"] == 1


def test_concurrent_attempts_of_one_submission_leave_one_row(store: ResultsStore) -> None:
    store.record_exam(EXAM)

    def attempt(i: int) -> None:
        store.record_exam(EXAM)
        store.record_submission(submission(email_message_id=f"<m{i}@brevo>"))
        store.record_calls("fb-resp-1", calls(3))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(attempt, range(16)))

    assert store.counts() == {"exams": 1, "submissions": 1, "question_results": 0, "cost_ledger": 3}


def test_the_ledger_is_the_jobs_calls_once_each(store: ResultsStore) -> None:
    started = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC).timestamp()
    store.record_calls("job-1", calls(3), {"feedback": started})
    store.record_calls("job-1", calls(3), {"feedback": started})
    store.record_calls("job-2", calls(1))

    rows = store.calls("job-1")
    assert [(r["call_index"], r["input_tokens"], r["cached_tokens"], r["output_tokens"]) for r in rows] == [
        (0, 100, 10, 50), (1, 101, 10, 50), (2, 102, 10, 50)]
    assert [r["cost_usd"] for r in rows] == pytest.approx([0.001, 0.002, 0.003])
    assert utc(rows[0]["at"]) == dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    assert (rows[0]["provider"], rows[0]["model"], rows[0]["stage"], rows[0]["ok"]) == (
        "openai", "gpt-4o-mini", "feedback", True)

    store.record_calls("job-1", calls(2))  # a stage that ran again with fewer calls
    assert len(store.calls("job-1")) == 2 and len(store.calls("job-2")) == 1


def test_a_question_result_written_again_is_updated(store: ResultsStore) -> None:
    facts = QuestionFacts(request_id="lesson-42", document_id="photosynthesis", count=2, job_id="lesson-42",
                          accepted=[{"question": {"id": "q1"}, "verdict": {"ok": True, "by": "offline"}}],
                          rejected=[{"draft_id": "d2", "question": "?", "reason": "duplicate"}])
    link = store.record_question_result(facts)
    store.record_question_result(replace(facts, shortfall="only 1 of 2"))

    assert link == {"table": "question_results", "key": "lesson-42"}
    row = store.question_result("lesson-42")
    assert row is not None and row["shortfall"] == "only 1 of 2"
    assert row["accepted"][0]["verdict"]["ok"] is True and row["rejected"][0]["reason"] == "duplicate"
    assert store.counts()["question_results"] == 1


def test_retention_anonymises_old_submissions_and_keeps_their_grades(
        store: ResultsStore, store_settings: Callable[..., Settings]) -> None:
    now = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
    store.record_exam(EXAM)
    store.record_submission(submission("resp-old", submitted_at=now - dt.timedelta(days=400)))
    # +08:00 local time, 29.9 days old in UTC: kept
    manila = dt.timezone(dt.timedelta(hours=8))
    recent = (now - dt.timedelta(days=29.9)).astimezone(manila)
    store.record_submission(submission("resp-new", submitted_at=recent))

    assert apply_retention(store, store_settings(), now) == 0  # DATA_RETENTION_DAYS unset
    assert apply_retention(store, store_settings(data_retention_days=30), now) == 1
    assert apply_retention(store, store_settings(data_retention_days=30), now) == 0

    old, new = store.submission("resp-old"), store.submission("resp-new")
    assert old is not None and new is not None
    assert old["student_id"] is None and old["answers"] is None and old["feedback_summary"] is None
    assert old["anonymised_at"] is not None and old["earned"] == 1.0 and old["grades"]
    assert new["student_id"] == person_id("ana@student.example") and new["answers"]


def test_forgetting_a_student_deletes_only_their_rows(store: ResultsStore) -> None:
    store.record_exam(EXAM)
    store.record_submission(submission("resp-1"))
    store.record_submission(submission("resp-2"))
    store.record_submission(submission("resp-3", student="jose@student.example"))

    forgotten = store.forget_student(as_person_id("ana@student.example"))

    assert sorted(f.response_id for f in forgotten) == ["resp-1", "resp-2"]
    assert forgotten[0].job_id.startswith("fb-resp-") and forgotten[0].outbox_file
    assert store.submission("resp-1") is None and store.submission("resp-3") is not None
    assert store.forget_student(person_id("ana@student.example")) == []


def test_writes_to_a_database_that_is_down_raise_store_unavailable(
        down_url: str, store_settings: Callable[..., Settings],
        make_store: Callable[[Settings], ResultsStore]) -> None:
    down = make_store(store_settings(database_url=down_url))

    with pytest.raises(StoreUnavailable, match="the results database failed"):
        down.record_exam(EXAM)
    with pytest.raises(StoreUnavailable):
        down.record_calls("job-1", calls(1))
