"""OpenTelemetry traces: send -> stage -> LLM call -> Brevo, off by default, exported by OTLP.

The pipeline runs in a Dramatiq worker in this process, on the real Redis broker, against the
fake OpenAI and Brevo servers; spans go to the SDK's in-memory exporter.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq import Worker
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import gabay.actors.feedback as feedback_actor
from gabay.actors import process_form_response
from gabay.broker import GabayBroker
from gabay.feedback.pipeline import FeedbackContext
from gabay.jobs import JobStatus
from gabay.middleware.tracing import TraceStages
from gabay.queues import FORM_RESPONSE, GRADING
from gabay.settings import Settings, load_settings
from gabay.tracing import TRACE_OPTION, build_tracing
from gabay.tracing.otel import OtelTracing
from tests.fakes import llm_server
from tests.fakes.brevo_server import FakeBrevo
from tests.support.feedback_llm import feedback_responder
from tests.support.feedback_samples import sample, without_points
from tests.support.feedback_workers import wait_for_job
from tests.support.processes import ROOT


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced(broker: GabayBroker, spans: InMemorySpanExporter,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[OtelTracing]:
    """The test process's broker with tracing on, as ``TRACING_ENABLED=true`` builds it."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing = OtelTracing(provider)
    stage = TraceStages(tracing)
    monkeypatch.setattr(broker, "tracing", tracing)
    broker.middleware.insert(1, stage)
    yield tracing
    broker.middleware.remove(stage)


def by_name(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    (span,) = [s for s in spans if s.name == name]
    return span


def feedback_through_a_worker(broker: GabayBroker, monkeypatch: pytest.MonkeyPatch, wired: Settings,
                              submission: dict[str, Any], queues: set[str] | None = None) -> str:
    """Send ``submission`` with the feedback context built from ``wired`` and run it to success
    in an in-process worker on the real broker; returns the job id."""
    monkeypatch.setattr(feedback_actor, "context", FeedbackContext.build(
        wired, broker.client, guard=broker.ownership.check, enqueue=broker.enqueue))
    worker = Worker(broker, queues=queues or {FORM_RESPONSE}, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        job_id = process_form_response.send(submission)
        wait_for_job(broker.client, broker.settings, job_id, JobStatus.SUCCEEDED, timeout=30)
    finally:
        worker.stop(timeout=10_000)
    return str(job_id)


def test_one_trace_from_send_through_the_stage_and_the_llm_call_to_brevo(
        traced: OtelTracing, spans: InMemorySpanExporter, broker: GabayBroker,
        redis_client: redis.Redis, settings: Settings, brevo: FakeBrevo, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with llm_server.running(responder=feedback_responder) as openai:
        wired = load_settings(openai_api_key=openai.api_key, openai_base_url=openai.base_url,
                              brevo_api_key=brevo.api_key, brevo_base_url=brevo.base_url,
                              llm_timeout=10, email_outbox_dir=tmp_path / "outbox")
        job_id = feedback_through_a_worker(broker, monkeypatch, wired, sample("mixed-score"))
    assert len(brevo.accepted) == 1

    finished = list(spans.get_finished_spans())
    send = by_name(finished, "send process_form_response")
    stage = by_name(finished, "process process_form_response")
    chat = by_name(finished, "chat gpt-4o-mini")
    email = by_name(finished, "POST /smtp/email")
    assert send.parent is None  # nothing was current at send(): the trace starts there
    assert stage.parent is not None and stage.parent.span_id == send.context.span_id
    assert chat.parent is not None and chat.parent.span_id == stage.context.span_id
    assert email.parent is not None and email.parent.span_id == stage.context.span_id
    assert {s.context.trace_id for s in (send, stage, chat, email)} == {send.context.trace_id}
    assert chat.start_time >= stage.start_time and chat.end_time <= stage.end_time

    attributes = dict(chat.attributes or {})
    call = redis_client.get(settings.keys.job(job_id))
    recorded = json.loads(call or b"{}")["calls"][0]
    assert attributes["gen_ai.system"] == "openai"
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.usage.input_tokens"] == recorded["prompt_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] == recorded["completion_tokens"] > 0
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == recorded["cached_tokens"]
    assert dict(stage.attributes or {})["messaging.destination.name"] == FORM_RESPONSE
    every = json.dumps([dict(s.attributes or {}) for s in finished])
    assert "jose.delacruz" not in every and "Jose" not in every  # no name, no address


def test_grading_then_feedback_is_one_trace_each_send_under_the_stage_that_made_it(
        traced: OtelTracing, spans: InMemorySpanExporter, broker: GabayBroker,
        redis_client: redis.Redis, settings: Settings, brevo: FakeBrevo, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    wired = load_settings(brevo_api_key=brevo.api_key, brevo_base_url=brevo.base_url,
                          email_outbox_dir=tmp_path / "outbox")
    # keyed answers without points: graded by code first
    feedback_through_a_worker(broker, monkeypatch, wired, without_points("mixed-score"),
                              queues={FORM_RESPONSE, GRADING})

    finished = list(spans.get_finished_spans())
    chain = [by_name(finished, name) for name in (
        "send grade_form_response", "process grade_form_response", "send process_form_response",
        "process process_form_response", "POST /smtp/email")]
    assert chain[0].parent is None
    for parent, child in itertools.pairwise(chain):  # each span is the parent of the next
        assert child.parent is not None and child.parent.span_id == parent.context.span_id
    assert len({s.context.trace_id for s in chain}) == 1


def test_a_failed_llm_call_ends_its_span_with_the_error(
        traced: OtelTracing, spans: InMemorySpanExporter, broker: GabayBroker,
        redis_client: redis.Redis, settings: Settings, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with llm_server.running() as openai:
        openai.script(*[llm_server.unauthorized()] * 3)
        wired = load_settings(openai_api_key=openai.api_key, openai_base_url=openai.base_url,
                              llm_timeout=10, email_outbox_dir=tmp_path / "outbox")
        feedback_through_a_worker(broker, monkeypatch, wired, sample("mixed-score"))

    finished = list(spans.get_finished_spans())
    chats = [s for s in finished if s.name.startswith("chat ")]
    assert chats and all(not s.status.is_ok for s in chats)
    assert dict(chats[0].attributes or {})["error.type"] == "ProviderRejected"
    stage = by_name(finished, "process process_form_response")
    assert all(c.parent is not None and c.parent.span_id == stage.context.span_id for c in chats)


def test_a_retry_stays_in_the_trace_of_its_send(traced: OtelTracing, broker: GabayBroker) -> None:
    first = broker.enqueue(dramatiq.Message(queue_name="system", actor_name="probe", args=("t",),
                                            kwargs={}, options={}))
    carrier = first.options[TRACE_OPTION]
    again = broker.enqueue(first.copy(options={"retries": 1}), delay=60_000)

    assert carrier["traceparent"].startswith("00-")
    assert again.options[TRACE_OPTION] == carrier


def test_tracing_is_off_by_default_and_an_untraced_process_never_loads_the_sdk(
        redis_client: redis.Redis) -> None:
    assert build_tracing(load_settings()).enabled is False
    code = ("import sys, gabay.actors, dramatiq; "
            "gabay.actors.broker.enqueue(dramatiq.Message(queue_name='system', actor_name='probe', "
            "args=('x',), kwargs={}, options={})); "
            "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, *args: Any) -> None:
        pass


def test_spans_are_exported_by_otlp_http_when_configured(broker: GabayBroker) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Collector.received = []
    try:
        settings = load_settings(tracing_enabled=True, otel_service_name="gabay-test",
                                 otel_exporter_otlp_endpoint=f"http://127.0.0.1:{server.server_port}")
        tracing = build_tracing(settings)
        assert isinstance(tracing, OtelTracing)
        tracing.inject(dramatiq.Message(queue_name="system", actor_name="probe", args=(),
                                        kwargs={}, options={}))
        tracing.shutdown()  # flushes the batch
    finally:
        server.shutdown()
        server.server_close()

    ((path, content_type, body),) = Collector.received
    assert path == "/v1/traces" and content_type == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(body)
    resource = request.resource_spans[0]
    service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
    assert service == "gabay-test"
    assert [s.name for s in resource.scope_spans[0].spans] == ["send probe"]
