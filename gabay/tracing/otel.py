"""OpenTelemetry behind :class:`gabay.tracing.Tracing`: loaded only when ``TRACING_ENABLED``.

Each process has its own TracerProvider (none is installed globally: gabay never changes an
application's own OpenTelemetry setup), exporting by OTLP/HTTP to
``OTEL_EXPORTER_OTLP_ENDPOINT`` in batches. Span names and attributes follow the semantic
conventions: messaging (``messaging.system: dramatiq``, ``messaging.destination.name``,
``messaging.message.id``) on send and process spans, GenAI on LLM spans (see
:mod:`gabay.llm.chat`). No attribute holds personal data: ids, names of actors, queues, models.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import Token
from dataclasses import dataclass
from typing import Any

import dramatiq
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gabay.settings import Settings
from gabay.tracing import TRACE_OPTION, ChildSpans, Span, Tracing, current_tracer

PROPAGATOR = TraceContextTextMapPropagator()


def otlp_exporter(settings: Settings) -> SpanExporter:
    """The OTLP/HTTP exporter (``OTEL_EXPORTER_OTLP_ENDPOINT``, else the exporter's default)."""
    endpoint = settings.otel_exporter_otlp_endpoint
    if endpoint is None:
        return OTLPSpanExporter()
    return OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")


@dataclass(frozen=True)
class _Run:
    """The span of one run and what to restore when it ends."""

    span: trace.Span
    context_token: Token[otel_context.Context]
    tracer_token: Token[ChildSpans | None]


class OtelTracing(Tracing):
    """Spans of sends, runs and the calls made during a run, on this provider's tracer."""

    enabled = True

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("gabay")

    @classmethod
    def from_settings(cls, settings: Settings, exporter: SpanExporter | None = None) -> OtelTracing:
        provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name}))
        provider.add_span_processor(BatchSpanProcessor(exporter or otlp_exporter(settings)))
        return cls(provider)

    def inject(self, message: dramatiq.Message) -> dramatiq.Message:
        if TRACE_OPTION in message.options:
            return message  # a retry or a requeue: it stays in the trace of its send
        span = self.tracer.start_span(f"send {message.actor_name}", kind=SpanKind.PRODUCER,
                                      attributes=_messaging(message, "send"))
        carrier: dict[str, str] = {}
        PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        span.end()
        return message.copy(options={TRACE_OPTION: carrier})

    def begin(self, message: Any) -> object:
        carrier = message.options.get(TRACE_OPTION)
        parent = PROPAGATOR.extract(carrier) if isinstance(carrier, dict) else None
        attributes = {**_messaging(message, "process"),
                      "gabay.retries": int(message.options.get("retries", 0))}
        span = self.tracer.start_span(f"process {message.actor_name}", context=parent,
                                      kind=SpanKind.CONSUMER, attributes=attributes)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return _Run(span, token, current_tracer.set(self))

    def end(self, handle: object, exception: BaseException | None) -> None:
        assert isinstance(handle, _Run)
        if exception is not None:
            handle.span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
            handle.span.set_attribute("error.type", type(exception).__name__)
        handle.span.end()
        current_tracer.reset(handle.tracer_token)
        otel_context.detach(handle.context_token)

    @contextmanager
    def child(self, name: str, kind: str, attributes: Mapping[str, Any]) -> Iterator[Span]:
        with self.tracer.start_as_current_span(name, kind=SpanKind[kind],
                                               attributes=dict(attributes)) as span:
            yield span

    def shutdown(self) -> None:
        self.provider.shutdown()


def _messaging(message: Any, operation: str) -> dict[str, Any]:
    return {"messaging.system": "dramatiq", "messaging.operation.name": operation,
            "messaging.destination.name": message.queue_name,
            "messaging.message.id": message.message_id, "gabay.actor": message.actor_name}
