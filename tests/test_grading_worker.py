"""The grading worker: grading -> feedback in real dramatiq processes, and grades kept once."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path
from typing import Any

import pytest
import redis

from gabay.actors import process_form_response
from gabay.actors.feedback import context
from gabay.broker import GabayBroker
from gabay.feedback.graded import grade_once, stored_grade
from gabay.feedback.pipeline import enqueue_record
from gabay.feedback.submission import job_id_for, parse_submission
from gabay.jobs import JobStatus
from gabay.queues import FORM_RESPONSE, GRADING
from gabay.settings import Settings
from tests.support.feedback_samples import EXPECTED, SAMPLE_NAMES, sample
from tests.support.feedback_workers import wait_for_job, worker_env


def without_points(name: str) -> dict[str, Any]:
    """A sample whose keyed answers lost their points: code must grade them."""
    data = sample(name)
    for answer in data["answers"]:
        if (answer.get("correct_answer") or "").strip():
            answer.pop("points", None)
    return data


def test_a_submission_to_grade_goes_to_the_grading_queue_first(broker: GabayBroker,
                                                                redis_client: redis.Redis) -> None:
    job_id = process_form_response.send(without_points("mixed-score"))

    assert job_id == job_id_for("resp-0002")
    assert redis_client.llen(broker.settings.keys.queue(GRADING)) == 1
    assert redis_client.llen(broker.settings.keys.queue(FORM_RESPONSE)) == 0


@pytest.mark.slow
def test_graded_first_the_email_states_the_computed_score(
        start_workers, tmp_path: Path, redis_client: redis.Redis, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    outbox = tmp_path / "outbox"
    start_workers(processes=1, threads=4, env=worker_env(outbox))

    jobs = {name: process_form_response.send(without_points(name)) for name in SAMPLE_NAMES}

    for name, job_id in jobs.items():
        record = wait_for_job(redis_client, settings, job_id, JobStatus.SUCCEEDED)
        earned, possible, _, _ = EXPECTED[name]
        parsed = email.message_from_bytes(Path(record.result["outbox_path"]).read_bytes(),
                                          policy=email.policy.default)
        assert f"{earned:g} / {possible:g}" in parsed["Subject"], name
        grade = stored_grade(record)
        assert grade is not None and grade.version == 1 and grade.points == earned
    assert len(list(outbox.iterdir())) == len(SAMPLE_NAMES)  # one email each


def test_a_grade_is_kept_and_a_changed_answer_key_makes_a_new_version(
        redis_client: redis.Redis) -> None:
    submission = parse_submission(without_points("mixed-score"))
    job_id = enqueue_record(context, submission)

    first = grade_once(context.settings, context.store, job_id, submission)
    again = grade_once(context.settings, context.store, job_id, submission)
    assert again == first and first.version == 1 and first.points == 3

    data = without_points("mixed-score")
    data["answers"][0]["correct_answer"] = data["answers"][0]["answer"]  # the key changed
    regraded = grade_once(context.settings, context.store, job_id, parse_submission(data))

    assert regraded.version == 2 and regraded.points == 4
    assert stored_grade(context.store.get(job_id)) == regraded
