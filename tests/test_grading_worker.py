"""The grading worker: grading -> feedback in real dramatiq processes, and grades kept once."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
import redis

from gabay.actors import process_form_response
from gabay.actors.feedback import context
from gabay.actors.grading import regrade_exam
from gabay.broker import GabayBroker
from gabay.feedback.graded import grade_once, stored_grade
from gabay.feedback.pipeline import enqueue_record
from gabay.feedback.submission import job_id_for, parse_submission
from gabay.grading.key import key_from_submission
from gabay.jobs import JobStatus
from gabay.queues import FORM_RESPONSE, GRADING
from gabay.settings import Settings, load_settings
from gabay.store.results import ResultsStore
from gabay.store.schema import upgrade
from tests.support import grading_actors
from tests.support.feedback_samples import EXPECTED, SAMPLE_NAMES, without_points
from tests.support.feedback_workers import wait_for_job, worker_env
from tests.support.polling import wait_for


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


GRADING_MODULES = ("tests.support.grading_actors",)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["graded", "handed_off"])
def test_a_worker_killed_in_the_grading_step_is_replaced_with_one_grade_and_one_email(
        point: str, start_workers, tmp_path: Path, redis_client: redis.Redis,  # type: ignore[no-untyped-def]
        settings: Settings) -> None:
    outbox = tmp_path / "outbox"
    data = without_points("mixed-score")
    job_id = enqueue_record(context, parse_submission(data))
    doomed = start_workers(processes=1, threads=2, modules=GRADING_MODULES, env=worker_env(outbox))

    actor = grading_actors.die_after_grade if point == "graded" else grading_actors.die_after_hand_off
    actor.send(data)

    doomed.wait(timeout=60)  # the worker SIGKILLed itself at the point
    assert redis_client.get(settings.keys.test("grading-hook", point)) is not None
    start_workers(processes=1, threads=2, modules=GRADING_MODULES, env=worker_env(outbox))

    record = wait_for_job(redis_client, settings, job_id, JobStatus.SUCCEEDED, timeout=90)
    grade = stored_grade(record)
    assert grade is not None and grade.version == 1 and grade.points == 3
    assert len(list(outbox.glob("resp-0002*"))) == 1  # one email, whichever point the kill hit


@pytest.mark.slow
def test_a_regrade_in_a_worker_makes_a_new_version_in_the_store_and_sends_no_email(
        start_workers, tmp_path: Path, redis_client: redis.Redis,  # type: ignore[no-untyped-def]
        settings: Settings) -> None:
    outbox = tmp_path / "outbox"
    database = f"sqlite:///{tmp_path / 'results.sqlite3'}"
    env = {**worker_env(outbox), "DATABASE_URL": database}
    store = ResultsStore.from_settings(load_settings(database_url=database))
    upgrade(store.engine)
    start_workers(processes=1, threads=2, env=env)
    job_id = process_form_response.send(without_points("mixed-score"))
    wait_for_job(redis_client, settings, job_id, JobStatus.SUCCEEDED)
    wait_for(lambda: store.submission("resp-0002"), timeout=30, message="the stored submission")

    changed = without_points("mixed-score")
    changed["answers"][0]["correct_answer"] = changed["answers"][0]["answer"]
    key = key_from_submission(parse_submission(changed)).model_copy(update={"version": 2})
    regrade_exam.send(key.model_dump(mode="json"))

    row = wait_for(lambda: (r := store.submission("resp-0002")) and r["grade"]["version"] == 2 and r,
                   timeout=30, message="grade version 2 in the store")
    assert row["earned"] == 4 and row["email_state"] == "sent"
    assert len(list(outbox.glob("resp-0002*"))) == 1
    store.dispose()
