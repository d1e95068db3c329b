"""The form response worker in real dramatiq processes: offline outbox, bad input, Brevo errors."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from gabay.actors import process_form_response
from gabay.broker import GabayBroker
from gabay.cli import main
from gabay.errors import InvalidInput
from gabay.feedback.submission import job_id_for
from gabay.jobs import JobStatus
from gabay.ops.demo.context import Demo
from gabay.ops.demo.feedback import demo_feedback
from gabay.queues import FORM_RESPONSE
from gabay.settings import Settings
from tests.fakes import brevo_server
from tests.fakes.brevo_server import FakeBrevo
from tests.support.feedback_samples import EXPECTED, SAMPLE_NAMES, SUBMISSIONS, sample
from tests.support.feedback_workers import dead_letters, wait_for_job, worker_env
from tests.support.polling import wait_for
from tests.support.unchecked import enqueue_unchecked

pytestmark = pytest.mark.slow


def test_send_validates_and_returns_the_job_id_derived_from_the_response_id(
        broker: GabayBroker, redis_client: redis.Redis, settings: Settings) -> None:
    job_id = process_form_response.send(sample("mixed-score"))
    assert job_id == job_id_for("resp-0002") == process_form_response.send(sample("mixed-score"))
    assert broker.client.llen(f"{broker.namespace}:{FORM_RESPONSE}") == 2

    bad = sample("mixed-score")
    bad["answers"] = []
    with pytest.raises(InvalidInput, match="answers"):
        process_form_response.send(bad)
    assert broker.client.llen(f"{broker.namespace}:{FORM_RESPONSE}") == 2


def test_offline_every_sample_becomes_one_parseable_eml(
        start_workers, tmp_path: Path, redis_client: redis.Redis, settings: Settings) -> None:
    outbox = tmp_path / "outbox"
    start_workers(processes=1, threads=4, env=worker_env(outbox))

    jobs = {name: process_form_response.send(sample(name)) for name in SAMPLE_NAMES}

    for name, job_id in jobs.items():
        record = wait_for_job(redis_client, settings, job_id, JobStatus.SUCCEEDED)
        assert record.result is not None
        earned, possible, _, recipient = EXPECTED[name]
        path = Path(record.result["outbox_path"])
        assert path.parent == outbox
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert parsed["To"].addresses[0].addr_spec == recipient
        assert f"{earned:g} / {possible:g}" in parsed["Subject"]
        assert parsed.get_content_type() == "multipart/alternative"
        text = parsed.get_body(("plain",))
        assert text is not None and f"{earned:g} / {possible:g}" in text.get_content()
        assert list(record.stages) == ["feedback", "render", "send"]
    assert len(list(outbox.glob("*.eml"))) == len(SAMPLE_NAMES)


def test_bad_input_at_the_worker_is_dead_lettered_without_retries(
        start_workers, tmp_path: Path, broker: GabayBroker, redis_client: redis.Redis,
        settings: Settings) -> None:
    start_workers(processes=1, threads=2, env=worker_env(tmp_path / "outbox"))
    bad = sample("mixed-score")
    bad["student"]["email"] = "not an address"

    enqueue_unchecked(process_form_response, bad)  # bypasses the check of send()

    record = wait_for_job(redis_client, settings, job_id_for("resp-0002"), JobStatus.FAILED)
    assert "student.email" in (record.error or "")
    letters = wait_for(lambda: dead_letters(redis_client, broker.namespace), timeout=30,
                       message="the dead letter")
    assert [m["options"].get("retries", 0) for m in letters] == [0]
    assert not (tmp_path / "outbox").exists()


def test_a_rejected_key_is_final_and_not_retried(start_workers, tmp_path: Path, broker: GabayBroker,
                                                 redis_client: redis.Redis, settings: Settings,
                                                 brevo: FakeBrevo) -> None:
    env = worker_env(tmp_path / "outbox", brevo) | {"BREVO_API_KEY": "xkeysib-a-wrong-one"}
    start_workers(processes=1, threads=2, env=env)

    job_id = process_form_response.send(sample("perfect-score"))

    record = wait_for_job(redis_client, settings, job_id, JobStatus.FAILED)
    wait_for(lambda: dead_letters(redis_client, broker.namespace), timeout=30, message="the dead letter")
    assert "HTTP 401 unauthorized: Key not found" in (record.error or "")
    assert "xkeysib-a-wrong-one" not in (record.error or "")
    assert len(brevo.requests) == 1 and brevo.accepted == []


def test_a_429_is_retried_after_the_announced_reset(start_workers, tmp_path: Path, broker: GabayBroker,
                                                    redis_client: redis.Redis, settings: Settings,
                                                    brevo: FakeBrevo) -> None:
    brevo.script(brevo_server.rate_limited(reset=2))
    start_workers(processes=1, threads=2, env=worker_env(tmp_path / "outbox", brevo))

    job_id = process_form_response.send(sample("perfect-score"))

    record = wait_for_job(redis_client, settings, job_id, JobStatus.SUCCEEDED)
    assert len(brevo.requests) == 2 and len(brevo.accepted) == 1
    assert brevo.requests[1]["at"] - brevo.requests[0]["at"] >= 2
    assert record.result is not None and record.result["message_id"] == brevo.accepted[0]["messageId"]


def test_the_cli_enqueues_waits_and_shows_where_the_email_went(
        start_workers, tmp_path: Path, redis_client: redis.Redis) -> None:
    outbox = tmp_path / "outbox"
    start_workers(processes=1, threads=2, env=worker_env(outbox))

    result = CliRunner().invoke(main, ["feedback", str(SUBMISSIONS / "tagalog.json"), "--wait",
                                       "--timeout", "60"])

    assert result.exit_code == 0, result.output
    assert f"Job {job_id_for('resp-0004')} enqueued." in result.output
    assert "Score: 3 / 5 (60%)" in result.output
    assert "Subject: Ang iyong feedback sa Photosynthesis Quiz: 3 / 5 (60%)" in result.output
    assert f"Sent: outbox file {outbox}" in result.output


def test_the_cli_refuses_a_bad_submission_with_one_line(redis_client: redis.Redis, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"response_id": "r1"}')

    result = CliRunner().invoke(main, ["feedback", str(bad)])

    assert result.exit_code == 1
    assert result.output.startswith("gabay: invalid submission: form: Field required;")


def test_the_demo_step_sends_every_sample_and_shows_one_email(
        start_workers, tmp_path: Path, redis_client: redis.Redis, settings: Settings) -> None:
    start_workers(processes=1, threads=4, env=worker_env(tmp_path / "outbox"))
    said: list[str] = []
    demo = Demo(settings)
    demo.say = said.append  # type: ignore[method-assign]

    demo_feedback(demo)

    output = "\n".join(said)
    for name in SAMPLE_NAMES:
        assert f"{name}.json: " in output
    assert "tagalog.json: 3 / 5 (60%)" in output and "FAILED" not in output
    assert "The text part of " in output and "Here is your feedback for Photosynthesis Quiz" in output
