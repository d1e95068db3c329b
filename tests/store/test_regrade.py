"""Re-grading an exam with a new answer key: new grade versions in the store, no email again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from gabay.errors import InvalidInput
from gabay.feedback.pipeline import FeedbackContext, process
from gabay.feedback.submission import parse_submission
from gabay.grading.exam_regrade import regrade_exam
from gabay.grading.key import AnswerKey, key_from_submission
from gabay.settings import Settings
from gabay.store.results import ResultsStore
from tests.support.feedback_samples import without_points

FORM = "form-bio-7-photosynthesis"


def new_key(data: dict[str, Any], version: int) -> AnswerKey:
    """The exam's key with question 1 now keyed to what the student answered."""
    changed = {**data, "answers": [dict(a) for a in data["answers"]]}
    changed["answers"][0]["correct_answer"] = changed["answers"][0]["answer"]
    return key_from_submission(parse_submission(changed)).model_copy(update={"version": version})


@pytest.fixture
def graded(redis_client: redis.Redis, store: ResultsStore,
           store_settings: Callable[..., Settings]) -> FeedbackContext:
    """The mixed-score sample graded by code (3 of 5), its email in the outbox, stored."""
    ctx = FeedbackContext.build(store_settings(), redis_client, results=store)
    process(ctx, without_points("mixed-score"))
    return ctx


def outbox_files(ctx: FeedbackContext) -> list[Path]:
    return sorted(Path(ctx.settings.email_outbox_dir).iterdir())


def test_a_new_key_gives_the_changed_submissions_a_new_grade_version_and_sends_nothing(
        graded: FeedbackContext, store: ResultsStore) -> None:
    before = store.submission("resp-0002")
    assert before is not None and before["grade"]["version"] == 1 and before["earned"] == 3
    emails = outbox_files(graded)

    summary = regrade_exam(store, new_key(without_points("mixed-score"), version=2))

    assert summary.regraded == ["resp-0002"] and summary.unchanged == 0
    after = store.submission("resp-0002")
    assert after is not None
    assert after["grade"]["version"] == 2 and after["grade"]["answer_key_version"] == 2
    assert (after["earned"], after["possible"], after["percent"]) == (4, 5, 80)
    assert after["answer_key_version"] == "2" and after["email_state"] == "sent"
    exam = store.exam(FORM)
    assert exam is not None and exam["answer_key_version"] == "2" and exam["answer_key"]["version"] == 2
    assert outbox_files(graded) == emails  # no email again


def test_the_same_key_twice_writes_one_new_version(graded: FeedbackContext, store: ResultsStore) -> None:
    key = new_key(without_points("mixed-score"), version=2)
    regrade_exam(store, key)

    again = regrade_exam(store, key)

    assert again.regraded == [] and again.unchanged == 1
    row = store.submission("resp-0002")
    assert row is not None and row["grade"]["version"] == 2


def test_an_exam_without_stored_submissions_is_refused_in_one_line(store: ResultsStore) -> None:
    key = new_key(without_points("mixed-score"), version=2)
    with pytest.raises(InvalidInput, match="has no stored submissions to re-grade"):
        regrade_exam(store, key)


def test_anonymised_submissions_are_left_out(graded: FeedbackContext, store: ResultsStore) -> None:
    row = store.submission("resp-0002")
    assert row is not None
    store.forget_student(row["student_id"])

    summary = regrade_exam(store, new_key(without_points("mixed-score"), version=2))

    assert summary.regraded == [] and summary.unchanged == 0
