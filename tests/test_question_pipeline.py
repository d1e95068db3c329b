"""The question pipeline end to end, across real worker processes: offline and through fake LLMs."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import SecretStr

from gabay.actors.questions import deliver_callback, generate_questions, retrieve_passages
from gabay.broker import GabayBroker
from gabay.errors import InvalidInput
from gabay.jobs import CallbackState, JobRecord, JobStatus, JobStore
from gabay.questions.callbacks import SIGNATURE_HEADER, verify
from gabay.settings import Settings
from tests.fakes import llm_server as fake
from tests.support.polling import wait_for
from tests.support.unchecked import enqueue_unchecked

pytestmark = pytest.mark.slow

DOCUMENTS = sorted((Path(__file__).resolve().parent.parent / "examples" / "documents").glob("*.md"))
KEY = "sk-test-key"
QUESTION_QUEUES = ("retrieval", "generation", "validation")


def request_for(path: Path, **extra: Any) -> dict[str, Any]:
    return {"document": {"id": path.stem, "title": path.stem, "text": path.read_text()}, "count": 5, **extra}


def finished(store: JobStore, job_id: str) -> Callable[[], JobRecord | None]:
    def read() -> JobRecord | None:
        record = store.get(job_id)
        return record if record.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) else None
    return read


@pytest.fixture
def store(redis_client: redis.Redis, settings: Settings) -> JobStore:
    return JobStore(redis_client, settings)


@pytest.fixture
def llm_servers() -> Iterator[tuple[fake.FakeLLMServer, fake.FakeLLMServer]]:
    with fake.running("deepseek", api_key=KEY, responder=fake.exam_responder) as deepseek, \
            fake.running("openai", api_key=KEY, responder=fake.exam_responder) as openai_server:
        yield deepseek, openai_server


def llm_env(deepseek: fake.FakeLLMServer, openai_server: fake.FakeLLMServer) -> dict[str, str]:
    return {"DEEPSEEK_API_KEY": KEY, "DEEPSEEK_BASE_URL": deepseek.base_url,
            "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": openai_server.base_url, "LLM_TIMEOUT": "10"}


def test_offline_pipeline_answers_three_documents_in_parallel(start_workers: Callable,
                                                             store: JobStore) -> None:
    start_workers(processes=2, threads=4)
    job_ids = [generate_questions.send(request_for(path)) for path in DOCUMENTS]

    records = [wait_for(finished(store, job_id), timeout=90, message=f"job {job_id}") for job_id in job_ids]

    for path, record in zip(DOCUMENTS, records, strict=True):
        assert record.status == JobStatus.SUCCEEDED, record.error
        assert record.result is not None and record.result["document_id"] == path.stem
        questions = record.result["questions"]
        assert len(questions) == 5 and record.result["shortfall"] is None
        assert {q["type"] for q in questions} == {"multiple_choice", "true_false", "short_answer"}
        assert set(record.stages) == {"retrieval", "generation", "validation"}
        assert all(timing.finished_at is not None for timing in record.stages.values())
        assert [(c.stage, c.provider, c.model) for c in record.calls] == [
            ("generation", "offline", "extractive-v1"), ("validation", "offline", "extractive-v1")]
        assert record.details["retrieval"]["method"] == "coverage"


def test_pipeline_through_fake_llms_records_providers_tokens_and_cost(
        start_workers: Callable, store: JobStore,
        llm_servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer]) -> None:
    deepseek, openai_server = llm_servers
    start_workers(processes=1, threads=4, env=llm_env(deepseek, openai_server))
    job_id = generate_questions.send(request_for(DOCUMENTS[1], topic="Calvin cycle", count=4))

    record = wait_for(finished(store, job_id), timeout=90, message="the job")

    assert record.status == JobStatus.SUCCEEDED, record.error
    assert record.result is not None and len(record.result["questions"]) == 4
    assert [(c.stage, c.provider, c.model, c.ok) for c in record.calls] == [
        ("generation", "deepseek", "deepseek-flash", True),
        ("validation-round-trip", "openai", "gpt-4o-mini", True),  # the blind answerer: no answer keys
        ("validation", "openai", "gpt-4o-mini", True)]
    assert all(c.prompt_tokens > 0 and c.cost_usd > 0 for c in record.calls)
    draft_body = deepseek.bodies()[0]
    assert draft_body["thinking"] == {"type": "disabled"}
    assert draft_body["response_format"] == {"type": "json_object"}
    sent = json.loads(draft_body["messages"][-1]["content"])
    assert sent["topic"] == "Calvin cycle" and "text" not in sent.get("document", {})
    assert any("Calvin cycle" in p["text"] for p in sent["passages"])


def test_when_deepseek_fails_openai_drafts(
        start_workers: Callable, store: JobStore,
        llm_servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer]) -> None:
    deepseek, openai_server = llm_servers
    deepseek.default = fake.server_error(503)
    start_workers(processes=1, threads=2, env=llm_env(deepseek, openai_server))
    job_id = generate_questions.send(request_for(DOCUMENTS[2], count=3))

    record = wait_for(finished(store, job_id), timeout=90, message="the job")

    assert record.status == JobStatus.SUCCEEDED, record.error
    assert [(c.stage, c.provider, c.ok) for c in record.calls] == [
        ("generation", "deepseek", False), ("generation", "openai", True),
        ("validation-round-trip", "openai", True), ("validation", "openai", True)]
    assert "HTTP 503" in (record.calls[0].error or "")


def test_a_rejected_provider_fails_the_job_at_once_with_a_clear_error(
        start_workers: Callable, store: JobStore, broker: GabayBroker,
        llm_servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer]) -> None:
    deepseek, openai_server = llm_servers
    deepseek.default = fake.unauthorized()  # (a 402, out of balance, fails over instead)
    start_workers(processes=1, threads=2, env=llm_env(deepseek, openai_server))
    job_id = generate_questions.send(request_for(DOCUMENTS[0], count=2))

    record = wait_for(finished(store, job_id), timeout=90, message="the job")

    assert record.status == JobStatus.FAILED
    assert record.error is not None
    assert record.error.startswith("deepseek rejected the request: HTTP 401 invalid_request_error")
    assert openai_server.requests == [] and len(deepseek.requests) == 1
    wait_for(lambda: broker.client.zcard(f"{broker.namespace}:generation.XQ") == 1, timeout=30,
             message="the message in the dead-letter queue")


@pytest.mark.parametrize(("change", "message"), [
    ({"document": {"id": "d", "title": "t", "text": "   "}}, "document.text: document text is empty"),
    ({"document": {"id": "d", "title": "t", "text": "x" * 200_001}},
     "document.text: String should have at most"),
    ({"count": 0}, "count: Input should be greater than or equal to 1"),
    ({"count": 500}, "count: Input should be less than or equal to 50"),
    ({"question_types": ["essay"]}, "question_types.0: Input should be"),
    ({"difficulty": "impossible"}, "difficulty: Input should be"),
    ({"document": {"id": "d", "title": "t", "text": "bell\x07 and nul\x00"}},
     "control or non-text character"),
])
def test_bad_input_is_rejected_at_send(store: JobStore, broker: GabayBroker, change: dict[str, Any],
                                       message: str) -> None:
    with pytest.raises(InvalidInput, match="invalid question request") as raised:
        generate_questions.send({**request_for(DOCUMENTS[0]), **change})
    assert message in str(raised.value)
    assert all(broker.client.llen(f"{broker.namespace}:{q}") == 0 for q in QUESTION_QUEUES)


def test_send_enqueues_the_retrieval_stage_with_the_job_id_and_nothing_for_a_finished_job(
        store: JobStore, broker: GabayBroker) -> None:
    queue = f"{broker.namespace}:retrieval"
    job_id = generate_questions.send(request_for(DOCUMENTS[0], request_id="req-7"))

    assert job_id == "req-7" and broker.client.llen(queue) == 1
    (message_id,) = broker.client.lrange(queue, 0, -1)
    message = json.loads(broker.client.hget(f"{queue}.msgs", message_id))
    assert message["actor_name"] == "retrieve_passages" and message["args"][1] == "req-7"
    assert message["args"][0]["document"]["id"] == DOCUMENTS[0].stem

    store.succeed("req-7", {"questions": []})
    assert generate_questions.send(request_for(DOCUMENTS[0], request_id="req-7")) == "req-7"
    assert broker.client.llen(queue) == 1  # a finished job is not run again


def test_bad_input_reaching_a_worker_is_dead_lettered_without_retries(
        start_workers: Callable, store: JobStore, broker: GabayBroker) -> None:
    start_workers(processes=1, threads=2)
    # enqueued without the check of send(), as a corrupt message would be
    enqueue_unchecked(retrieve_passages, {**request_for(DOCUMENTS[0]), "count": 500}, "bad-job")

    dead_key = f"{broker.namespace}:retrieval.XQ"
    wait_for(lambda: broker.client.zcard(dead_key) == 1, timeout=30, message="the dead letter")
    (raw,) = broker.client.hvals(f"{dead_key}.msgs")
    dead = json.loads(raw)
    assert dead["options"].get("retries", 0) == 0
    record = store.get("bad-job")
    assert record.status == JobStatus.FAILED
    assert record.error is not None and "count: Input should be less than or equal to 50" in record.error


def test_the_same_request_id_twice_makes_one_job(start_workers: Callable, store: JobStore) -> None:
    start_workers(processes=1, threads=2)
    first = generate_questions.send(request_for(DOCUMENTS[2], request_id="req-42"))
    record = wait_for(finished(store, first), timeout=60, message="the job")
    second = generate_questions.send(request_for(DOCUMENTS[2], request_id="req-42"))

    assert first == second == "req-42"
    assert store.get("req-42").updated_at == record.updated_at  # not run again


class Receiver:
    """A local callback receiver: fails the first ``failures`` posts, then accepts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[tuple[bytes, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((body, dict(self.headers)))
                status = 500 if len(receiver.received) <= receiver.failures else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/questions?token=abc"


def test_the_callback_is_delivered_signed_after_a_failed_attempt(start_workers: Callable, store: JobStore,
                                                                 broker: GabayBroker) -> None:
    receiver = Receiver(failures=1)
    try:
        start_workers(processes=1, threads=2, env={"CALLBACK_SECRET": "s3cret"})
        job_id = generate_questions.send(request_for(DOCUMENTS[1], callback_url=receiver.url))

        wait_for(lambda: len(receiver.received) == 2, timeout=60, message="the retried callback")
        body, headers = receiver.received[-1]
        payload = json.loads(body)
        assert payload["job_id"] == job_id and payload["status"] == "succeeded"
        assert len(payload["result"]["questions"]) == 5
        assert verify(body, headers[SIGNATURE_HEADER], SecretStr("s3cret"))
        assert not verify(body, headers[SIGNATURE_HEADER], SecretStr("other"))
        wait_for(lambda: (store.get(job_id).callback or CallbackState()).state == "delivered", timeout=10,
                 message="the delivery on the record")
        deliver_callback.send(job_id, receiver.url)  # a duplicate run posts nothing more
        broker.join("validation", timeout=30_000)
    finally:
        receiver.httpd.shutdown()
    assert len(receiver.received) == 2


def test_several_documents_are_drafted_at_the_same_time(
        start_workers: Callable, store: JobStore,
        llm_servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer]) -> None:
    deepseek, openai_server = llm_servers
    deepseek.default = fake.Behaviour(delay=1.0)  # each draft takes a second
    start_workers(processes=1, threads=4, env=llm_env(deepseek, openai_server))
    job_ids = [generate_questions.send(request_for(path, count=2)) for path in DOCUMENTS]

    records = [wait_for(finished(store, job_id), timeout=90, message=f"job {job_id}") for job_id in job_ids]

    assert all(r.status == JobStatus.SUCCEEDED for r in records)
    assert deepseek.max_inflight >= 2  # drafts of different documents overlapped
