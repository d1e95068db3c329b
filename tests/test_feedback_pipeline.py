"""The feedback pipeline in one process: stages, job records, the sent record, each Brevo outcome."""

from __future__ import annotations

import email
import email.policy
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from gabay.errors import EmailRejected, EmailRetryable, EmailUncertain, InvalidInput
from gabay.feedback.pipeline import FeedbackContext, process
from gabay.feedback.submission import idempotency_key_for, job_id_for
from gabay.jobs import JobStatus
from gabay.settings import load_settings
from tests.fakes import brevo_server, llm_server
from tests.fakes.brevo_server import FakeBrevo
from tests.support.feedback_llm import feedback_responder
from tests.support.feedback_samples import sample

JOB = job_id_for("resp-0002")


def context(client: redis.Redis, tmp_path: Path, **overrides: Any) -> FeedbackContext:
    settings = load_settings(email_outbox_dir=tmp_path / "outbox", brevo_timeout=2, **overrides)
    return FeedbackContext.build(settings, client)


def brevo_context(client: redis.Redis, tmp_path: Path, brevo: FakeBrevo, **overrides: Any) -> FeedbackContext:
    return context(client, tmp_path, brevo_api_key=brevo.api_key, brevo_base_url=brevo.base_url, **overrides)


def test_offline_a_submission_becomes_one_eml_file_and_a_job_record(redis_client: redis.Redis,
                                                                      tmp_path: Path) -> None:
    ctx = context(redis_client, tmp_path)

    result = process(ctx, sample("mixed-score"))

    files = list((tmp_path / "outbox").iterdir())
    assert [f.name for f in files] == [Path(result["outbox_path"]).name]
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed["To"].addresses[0].addr_spec == "jose.delacruz@student.example"
    record = ctx.store.get(JOB)
    assert record.kind == "feedback" and record.status is JobStatus.SUCCEEDED
    assert list(record.stages) == ["feedback", "render", "send"]
    assert all(t.finished_at is not None for t in record.stages.values())
    assert [c.provider for c in record.calls] == ["offline"]
    assert record.result is not None and record.result["score"]["label"] == "3 / 5 (60%)"
    assert record.result["via"] == "outbox" and record.result["feedback_source"] == "offline"


def test_a_second_run_writes_no_second_file(redis_client: redis.Redis, tmp_path: Path) -> None:
    ctx = context(redis_client, tmp_path)
    first = process(ctx, sample("mixed-score"))
    written = Path(first["outbox_path"]).read_bytes()

    second = process(ctx, sample("mixed-score"))

    assert second["outbox_path"] == first["outbox_path"]
    assert len(list((tmp_path / "outbox").iterdir())) == 1
    assert Path(first["outbox_path"]).read_bytes() == written


def test_brevo_gets_the_email_with_the_submissions_idempotency_key(redis_client: redis.Redis, tmp_path: Path,
                                                                    brevo: FakeBrevo) -> None:
    result = process(brevo_context(redis_client, tmp_path, brevo), sample("tagalog"))

    assert result["via"] == "brevo" and result["message_id"] == brevo.accepted[0]["messageId"]
    body = brevo.accepted[0]
    assert body["to"] == [{"email": "juan.bautista@student.example", "name": "Juan Bautista"}]
    assert body["subject"] == "Ang iyong feedback sa Photosynthesis Quiz: 3 / 5 (60%)"
    assert body["headers"]["idempotencyKey"] == idempotency_key_for("resp-0004")
    assert not (tmp_path / "outbox").exists()


def test_one_mailer_serves_every_submission_of_a_context(redis_client: redis.Redis, tmp_path: Path,
                                                         brevo: FakeBrevo) -> None:
    ctx = brevo_context(redis_client, tmp_path, brevo)

    process(ctx, sample("mixed-score"))
    process(ctx, sample("tagalog"))

    assert len(brevo.accepted) == 2
    assert brevo.requests[0]["client"] == brevo.requests[1]["client"]  # one kept Brevo connection


def test_a_rejected_email_fails_the_job_with_brevos_reason(redis_client: redis.Redis, tmp_path: Path,
                                                           brevo: FakeBrevo) -> None:
    ctx = brevo_context(redis_client, tmp_path, brevo)
    brevo.script(brevo_server.not_enough_credits())

    with pytest.raises(EmailRejected):
        process(ctx, sample("mixed-score"))

    record = ctx.store.get(JOB)
    assert record.status is JobStatus.FAILED and "HTTP 402 not_enough_credits" in (record.error or "")
    assert ctx.records.get(JOB)["lease_until"] == "0"  # released: a fixed configuration may retry


def test_a_429_waits_and_then_sends_once(redis_client: redis.Redis, tmp_path: Path, brevo: FakeBrevo) -> None:
    ctx = brevo_context(redis_client, tmp_path, brevo)
    brevo.script(brevo_server.rate_limited(reset=3))

    with pytest.raises(EmailRetryable) as caught:
        process(ctx, sample("mixed-score"), final_attempt=False)
    assert caught.value.retry_after == 3
    record = ctx.store.get(JOB)
    assert record.status is JobStatus.QUEUED and "will retry" in (record.error or "")
    assert ctx.records.get(JOB)["uncertain_since"] == ""  # a 429 surely sent nothing

    process(ctx, sample("mixed-score"))
    assert len(brevo.accepted) == 1 and ctx.store.get(JOB).status is JobStatus.SUCCEEDED


def test_a_lost_answer_is_settled_by_brevos_list_of_sent_emails(redis_client: redis.Redis,
                                                                  tmp_path: Path, brevo: FakeBrevo) -> None:
    ctx = brevo_context(redis_client, tmp_path, brevo)
    brevo.script(brevo_server.accept_then_drop())
    with pytest.raises(EmailRetryable):
        process(ctx, sample("mixed-score"), final_attempt=False)
    assert ctx.records.get(JOB)["uncertain_since"] != ""

    result = process(ctx, sample("mixed-score"))

    # The retry found the email in the list: it records Brevo's message id and sends nothing.
    assert result["sent_earlier"] is True
    assert result["message_id"] == brevo.listed[0]["messageId"]
    assert len(brevo.accepted) == 1 and len(brevo.sends) == 1 and len(brevo.log_queries) == 1


def test_an_uncertain_send_that_brevo_does_not_list_is_sent_again_however_old(
        redis_client: redis.Redis, tmp_path: Path, brevo: FakeBrevo) -> None:
    ctx = brevo_context(redis_client, tmp_path, brevo)
    brevo.script(brevo_server.server_error(503))
    with pytest.raises(EmailRetryable):
        process(ctx, sample("mixed-score"), final_attempt=False)
    an_hour_ago = time.time() - 3600  # past Brevo's 30-minute key and the settle delay
    redis_client.hset(ctx.records.key(JOB), mapping={"uncertain_since": an_hour_ago,
                                                     "maybe_sent_until": an_hour_ago})

    process(ctx, sample("mixed-score"))

    assert len(brevo.sends) == 2 and len(brevo.accepted) == 1 and len(brevo.log_queries) == 1
    assert ctx.store.get(JOB).status is JobStatus.SUCCEEDED


def test_an_uncertain_send_older_than_brevos_list_goes_to_a_person(
        redis_client: redis.Redis, tmp_path: Path, brevo: FakeBrevo) -> None:
    ctx = brevo_context(redis_client, tmp_path, brevo)
    brevo.script(brevo_server.server_error(503))
    with pytest.raises(EmailRetryable):
        process(ctx, sample("mixed-score"), final_attempt=False)
    redis_client.hset(ctx.records.key(JOB), "uncertain_since", time.time() - 30 * 86400)

    with pytest.raises(EmailUncertain):
        process(ctx, sample("mixed-score"))

    assert len(brevo.sends) == 1
    assert ctx.store.get(JOB).status is JobStatus.FAILED


def test_an_attempt_waits_while_another_one_holds_the_claim(redis_client: redis.Redis, tmp_path: Path,
                                                            brevo: FakeBrevo) -> None:
    ctx = brevo_context(redis_client, tmp_path, brevo)
    assert ctx.records.claim(JOB).status == "claimed"

    with pytest.raises(EmailRetryable) as caught:
        process(ctx, sample("mixed-score"), final_attempt=False)

    assert 0 < (caught.value.retry_after or 0) <= ctx.records.lease_seconds + 1
    assert brevo.requests == []


def test_a_retry_reuses_the_feedback_instead_of_asking_the_model_again(
        redis_client: redis.Redis, tmp_path: Path, brevo: FakeBrevo) -> None:
    with llm_server.running(responder=feedback_responder) as openai:
        # No settle delay: the retry finds the list without the email and sends at once.
        ctx = brevo_context(redis_client, tmp_path, brevo, openai_api_key=openai.api_key,
                            openai_base_url=openai.base_url, brevo_log_settle_seconds=0)
        brevo.script(brevo_server.server_error(500))
        with pytest.raises(EmailRetryable):
            process(ctx, sample("mixed-score"), final_attempt=False)
        result = process(ctx, sample("mixed-score"))
        model_requests = len(openai.requests)

    assert model_requests == 1
    assert result["feedback_source"] == "openai:gpt-4o-mini"
    assert "The key answer fits because..." in brevo.accepted[0]["textContent"]
    record = ctx.store.get(JOB)
    assert len(record.calls) == 1 and record.total_tokens > 0


def test_invalid_input_fails_the_job_with_the_reason(redis_client: redis.Redis, tmp_path: Path) -> None:
    ctx = context(redis_client, tmp_path)
    data = sample("mixed-score")
    data["student"]["email"] = "jose at school"

    with pytest.raises(InvalidInput, match=r"student\.email"):
        process(ctx, data)

    record = ctx.store.get(JOB)
    assert record.status is JobStatus.FAILED and "student.email" in (record.error or "")
