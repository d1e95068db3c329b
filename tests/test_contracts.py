"""One strictness for every contract, names fit for email headers, and defined re-sends.

- JSON types are strict in both contracts: ``"count": "5"`` is refused like ``"max_points": "1"``.
- A student's or teacher's name holds no invisible or direction-changing character.
- The same request id while its job is queued, running or done is the same job (nothing enqueued
  again); ``regenerate`` runs a finished one again. A stage of a finished job never reopens it.
- The first content sent for a response id wins; other content under that id is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis

from gabay.actors.questions import generate_questions, stages, store
from gabay.broker import GabayBroker
from gabay.errors import InvalidInput, JobFinished
from gabay.feedback.pipeline import FeedbackContext, enqueue_record, process
from gabay.feedback.submission import parse_submission
from gabay.jobs import JobStatus
from gabay.queues import RETRIEVAL
from gabay.settings import load_settings
from tests.support.feedback_samples import sample

REQUEST = {"request_id": "req-1", "count": 2, "question_types": ["true_false"],
           "document": {"id": "water", "title": "Water",
                        "text": "# Water\n\nEvaporation turns liquid water into vapour. " * 3}}


def test_a_count_given_as_text_is_refused(broker: GabayBroker) -> None:
    with pytest.raises(InvalidInput, match="count: Input should be a valid integer"):
        generate_questions.send({**REQUEST, "count": "5"})
    assert broker.client.llen(broker.settings.keys.queue(RETRIEVAL)) == 0


@pytest.mark.parametrize("invisible", ["\u202e", "\u200b", "\u2066", "\ufeff"])
def test_a_name_with_an_invisible_or_direction_changing_character_is_refused(invisible: str) -> None:
    data = sample("mixed-score")
    data["student"]["name"] = f"Maria{invisible} Santos"
    with pytest.raises(InvalidInput, match=r"student.name: .*invisible or direction-changing"):
        parse_submission(data)


def queued(broker: GabayBroker) -> int:
    return int(broker.client.llen(broker.settings.keys.queue(RETRIEVAL)))


def test_the_same_request_id_is_one_job_whatever_its_state(broker: GabayBroker) -> None:
    job_id = generate_questions.send(REQUEST)
    assert generate_questions.send(REQUEST) == job_id  # queued: not enqueued again
    assert queued(broker) == 1
    store.update(job_id, lambda r: setattr(r, "status", JobStatus.RUNNING))
    assert generate_questions.send(REQUEST) == job_id
    store.succeed(job_id, {"questions": []})
    assert generate_questions.send(REQUEST) == job_id
    assert queued(broker) == 1  # one pipeline, one bill

    assert generate_questions.send({**REQUEST, "regenerate": True}) == job_id
    assert queued(broker) == 2
    record = store.get(job_id)
    assert record.status is JobStatus.QUEUED and record.result is None


def test_a_failed_job_runs_again_when_its_request_comes_again(broker: GabayBroker) -> None:
    job_id = generate_questions.send(REQUEST)
    store.fail(job_id, "every provider failed")
    assert generate_questions.send(REQUEST) == job_id
    assert queued(broker) == 2 and store.get(job_id).status is JobStatus.QUEUED


def test_a_late_stage_message_never_reopens_a_finished_job(broker: GabayBroker) -> None:
    job_id = generate_questions.send(REQUEST)
    store.succeed(job_id, {"questions": []})
    with pytest.raises(JobFinished):
        stages.begin(job_id, "generation")
    assert store.get(job_id).status is JobStatus.SUCCEEDED


def feedback_context(client: redis.Redis, tmp_path: Path) -> FeedbackContext:
    return FeedbackContext.build(load_settings(email_outbox_dir=tmp_path / "outbox"), client)


def other_content() -> dict[str, Any]:
    data = sample("mixed-score")
    data["answers"][0]["answer"] = "a different answer"
    return data


def test_the_first_content_of_a_response_id_wins_and_other_content_is_refused(
        redis_client: redis.Redis, tmp_path: Path) -> None:
    ctx = feedback_context(redis_client, tmp_path)
    first = enqueue_record(ctx, parse_submission(sample("mixed-score")))
    assert enqueue_record(ctx, parse_submission(sample("mixed-score"))) == first  # a re-send

    with pytest.raises(InvalidInput, match="already submitted with other content"):
        enqueue_record(ctx, parse_submission(other_content()))
    with pytest.raises(InvalidInput, match="already submitted with other content"):
        process(ctx, other_content())  # the worker refuses it too: it is dead-lettered
    result = process(ctx, sample("mixed-score"))
    assert result["response_id"] == sample("mixed-score")["response_id"]


def test_after_a_final_failure_new_content_is_a_new_attempt(redis_client: redis.Redis,
                                                             tmp_path: Path) -> None:
    ctx = feedback_context(redis_client, tmp_path)
    job_id = enqueue_record(ctx, parse_submission(sample("mixed-score")))
    ctx.store.fail(job_id, "Brevo rejected the email")
    assert enqueue_record(ctx, parse_submission(other_content())) == job_id
    assert ctx.store.get(job_id).status is JobStatus.QUEUED
