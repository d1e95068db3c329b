"""Result callbacks of question and feedback jobs: signed, retried, every attempt on the job record,
a callback that keeps failing marked failed on the job and dead-lettered under the job's id."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import SecretStr

from gabay.actors import generate_questions, process_form_response
from gabay.broker import GabayBroker
from gabay.callbacks.delivery import deliver
from gabay.callbacks.signing import SIGNATURE_HEADER, verify
from gabay.errors import CallbackFailed, InvalidInput
from gabay.jobs import CallbackState, JobRecord, JobStatus, JobStore
from gabay.queues import FORM_RESPONSE, VALIDATION
from gabay.settings import Settings, load_settings
from tests.fakes import webhook_server
from tests.fakes.webhook_server import FakeReceiver, server_error
from tests.support.feedback_samples import sample
from tests.support.feedback_workers import worker_env
from tests.support.polling import wait_for

SECRET = "callback-s3cret"
DOCUMENTS = sorted((Path(__file__).resolve().parent.parent / "examples" / "documents").glob("*.md"))


@pytest.fixture
def receiver() -> Any:
    with webhook_server.webhook() as server:
        yield server


@pytest.fixture
def store(redis_client: redis.Redis, settings: Settings) -> JobStore:
    return JobStore(redis_client, settings)


def with_token(url: str) -> str:
    return url + "?token=do-not-log-me"


def callback_of(store: JobStore, job_id: str) -> CallbackState:
    return store.get(job_id).callback or CallbackState(state="pending", attempts=0)


def dead_letters(broker: GabayBroker, queue: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in broker.client.hvals(broker.settings.keys.dead_messages(queue))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- one delivery, in this process --

def test_each_attempt_is_recorded_and_a_delivered_callback_is_not_posted_again(
        store: JobStore, receiver: FakeReceiver) -> None:
    settings = load_settings(callback_secret=SecretStr(SECRET))
    job = store.create("feedback")
    store.succeed(job.id, {"response_id": "r-1"})
    receiver.script(server_error())

    with pytest.raises(CallbackFailed, match="HTTP 500"):
        deliver(store, settings, job.id, with_token(receiver.url), last_attempt=False)
    pending = callback_of(store, job.id)
    assert (pending.state, pending.attempts, pending.status_code) == ("pending", 1, None)
    assert pending.last_error == f"callback to {receiver.root.removeprefix('http://')} answered HTTP 500"

    delivered = deliver(store, settings, job.id, with_token(receiver.url), last_attempt=False)
    assert (delivered.state, delivered.attempts, delivered.status_code) == ("delivered", 2, 200)
    assert deliver(store, settings, job.id, with_token(receiver.url), last_attempt=True) == delivered
    assert len(receiver.requests) == 2
    body = receiver.requests[-1]["raw"]
    assert verify(body, receiver.requests[-1]["headers"][SIGNATURE_HEADER], SecretStr(SECRET))
    assert json.loads(body)["job_id"] == job.id and json.loads(body)["status"] == "succeeded"
    assert store.get(job.id).status is JobStatus.SUCCEEDED


def test_an_unreachable_receiver_on_the_last_attempt_is_a_failed_callback_naming_only_the_host(
        store: JobStore, settings: Settings) -> None:
    job = store.create("questions")
    url = f"http://127.0.0.1:{free_port()}/hook?token=do-not-log-me"

    with pytest.raises(CallbackFailed):
        deliver(store, settings, job.id, url, last_attempt=True)

    failed = callback_of(store, job.id)
    assert (failed.state, failed.attempts) == ("failed", 1)
    assert failed.last_error is not None and "ConnectionError" in failed.last_error
    assert "token" not in failed.last_error and "/hook" not in failed.last_error


def test_a_submission_callback_url_must_be_http(broker: GabayBroker) -> None:
    with pytest.raises(InvalidInput, match="callback_url"):
        process_form_response.send({**sample("mixed-score"), "callback_url": "ftp://platform.example/x"})


# -- across real worker processes --

@pytest.mark.slow
def test_a_feedback_callback_is_signed_and_retried_after_a_500(
        start_workers: Callable, tmp_path: Path, store: JobStore, receiver: FakeReceiver) -> None:
    receiver.script(server_error())  # the first POST fails, the second is accepted
    workers = start_workers(processes=1, threads=2, queues=(FORM_RESPONSE,),
                            env={**worker_env(tmp_path / "outbox"), "CALLBACK_SECRET": SECRET})

    job_id = process_form_response.send({**sample("mixed-score"), "callback_url": with_token(receiver.url)})

    wait_for(lambda: callback_of(store, job_id).state == "delivered", timeout=30,
             message="the retried feedback callback")
    record = store.get(job_id)
    assert record.status is JobStatus.SUCCEEDED and record.callback is not None
    assert (record.callback.attempts, record.callback.status_code) == (2, 200)
    assert [r["status"] for r in receiver.requests] == [500, 200]
    assert all(r["path"] == "/hooks/gabay-alerts?token=do-not-log-me" for r in receiver.requests)
    accepted = receiver.accepted()[0]
    assert verify(accepted["raw"], accepted["headers"][SIGNATURE_HEADER], SecretStr(SECRET))
    body = accepted["json"]
    assert (body["job_id"], body["kind"], body["status"]) == (job_id, "feedback", "succeeded")
    assert body["result"]["score"]["percent"] == 60 and body["result"]["response_id"] == "resp-0002"
    assert "do-not-log-me" not in workers.log()  # the URL's token is in no log line


@pytest.mark.slow
def test_a_question_callback_that_always_fails_is_failed_on_the_job_and_dead_lettered_by_job_id(
        start_workers: Callable, store: JobStore, broker: GabayBroker, receiver: FakeReceiver) -> None:
    receiver.script(*[server_error() for _ in range(10)])
    workers = start_workers(processes=1, threads=2, queues=("retrieval", "generation", "validation"),
                            env={"CALLBACK_MAX_RETRIES": "1"})
    request = {"document": {"id": "d1", "title": "d1", "text": DOCUMENTS[0].read_text()}, "count": 2,
               "callback_url": with_token(receiver.url)}

    message = generate_questions.send_with_options(args=(request,))

    def failed_for_good() -> JobRecord | None:
        record = store.get(message.message_id)
        return record if record.callback is not None and record.callback.state == "failed" else None

    record = wait_for(failed_for_good, timeout=60, message="the callback to fail for good")
    assert record.status is JobStatus.SUCCEEDED, record.error  # the job did its work, not its callback
    assert record.callback is not None and record.callback.attempts == 2  # the first try and 1 retry
    assert "answered HTTP 500" in (record.callback.last_error or "")
    assert "token" not in (record.callback.last_error or "")
    letters = wait_for(lambda: dead_letters(broker, VALIDATION), timeout=10, message="the dead letter")
    assert [(m["actor_name"], m["message_id"]) for m in letters] == [("deliver_callback", message.message_id)]
    assert len(receiver.requests) == 2
    assert "do-not-log-me" not in workers.log() and "do-not-log-me" not in json.dumps(letters)
