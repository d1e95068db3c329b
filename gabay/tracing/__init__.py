"""Tracing: OpenTelemetry traces of every job, from ``send()`` through each stage to the email.

Off by default (``TRACING_ENABLED``). A process with tracing off never imports OpenTelemetry: its
:class:`Tracing` does nothing and :func:`child_span` costs one context-variable read. With tracing
on, :func:`build_tracing` loads :mod:`gabay.tracing.otel` (the SDK and the OTLP exporter):

- the broker's enqueue opens a ``send <actor>`` span (producer) and carries its context in the
  message (option ``trace_context``, W3C ``traceparent``); a retry keeps the context of its send;
- the worker opens a ``process <actor>`` span (consumer) under it for each run and makes it
  current, so the next stage's send, each LLM call (``chat <model>``, with the GenAI
  semantic-convention attributes) and the Brevo call (``POST /smtp/email``) are its children.

Call sites (the LLM chat, the Brevo client) use :func:`child_span`, which asks the tracer of the
running stage through a context variable: no global tracer, no collaborator to thread through.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

import dramatiq

from gabay.settings import Settings

#: The message option that carries the sender's trace context (W3C trace context headers).
TRACE_OPTION = "trace_context"
#: Span kinds, by name (the values of opentelemetry.trace.SpanKind).
CLIENT, PRODUCER, CONSUMER, INTERNAL = "CLIENT", "PRODUCER", "CONSUMER", "INTERNAL"


class Span(Protocol):
    """What call sites do with a span: add attributes once the result is known."""

    def set_attribute(self, key: str, value: Any) -> None: ...


class ChildSpans(Protocol):
    def child(self, name: str, kind: str, attributes: Mapping[str, Any]) -> AbstractContextManager[Span]: ...


#: The tracer of the stage running in this thread (set by the stage span, None when untraced).
current_tracer: ContextVar[ChildSpans | None] = ContextVar("gabay_tracer", default=None)


class Tracing:
    """Tracing switched off: nothing is recorded, nothing is imported."""

    enabled = False

    def inject(self, message: dramatiq.Message) -> dramatiq.Message:
        """The message to enqueue, carrying the trace context of its send."""
        return message

    def begin(self, message: Any) -> object | None:
        """Open the span of one run of ``message`` and make it current; a handle for :meth:`end`."""
        return None

    def end(self, handle: object, exception: BaseException | None) -> None:
        """Close the span of :meth:`begin` (an error when the run raised)."""

    def shutdown(self) -> None:
        """Export what is left (at worker shutdown)."""


@contextmanager
def child_span(name: str, attributes: Mapping[str, Any], kind: str = CLIENT) -> Iterator[Span | None]:
    """A span under the running stage's span; None (nothing recorded) when untraced."""
    tracer = current_tracer.get()
    if tracer is None:
        yield None
        return
    with tracer.child(name, kind, attributes) as span:
        yield span


def set_attributes(span: Span | None, attributes: Mapping[str, Any]) -> None:
    """Add attributes to a span of :func:`child_span` (nothing when untraced)."""
    if span is not None:
        for key, value in attributes.items():
            if value is not None:
                span.set_attribute(key, value)


def build_tracing(settings: Settings) -> Tracing:
    """The tracing of this process: off, or OpenTelemetry exporting by OTLP."""
    if not settings.tracing_enabled:
        return Tracing()
    # Imported here on purpose: only a process with tracing on pays for the SDK.
    from gabay.tracing.otel import OtelTracing

    return OtelTracing.from_settings(settings)
