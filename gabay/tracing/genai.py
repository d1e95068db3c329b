"""The attributes of an LLM call's span, by the OpenTelemetry GenAI semantic conventions.

``gen_ai.system`` (and its newer name ``gen_ai.provider.name``), ``gen_ai.operation.name``,
``gen_ai.request.model``, ``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens`` and the
prompt-cache hits ``gen_ai.usage.cache_read.input_tokens`` (also as
``gen_ai.usage.cached_tokens``), plus gabay's stage and cost. Never the prompt or the answer: they
hold students' answers.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlparse


class CallUsage(Protocol):
    stage: str
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost_usd: float


def request_attributes(provider: str, model: str, base_url: str, *, max_tokens: int | None,
                       temperature: float | None) -> dict[str, Any]:
    host = urlparse(base_url)
    return {
        "gen_ai.system": provider,
        "gen_ai.provider.name": provider,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.request.max_tokens": max_tokens,
        "gen_ai.request.temperature": temperature,
        "server.address": host.hostname or "",
        "server.port": host.port or (443 if host.scheme == "https" else 80),
    }


def usage_attributes(call: CallUsage | None) -> dict[str, Any]:
    if call is None:
        return {}
    return {
        "gen_ai.usage.input_tokens": call.prompt_tokens,
        "gen_ai.usage.output_tokens": call.completion_tokens,
        "gen_ai.usage.cache_read.input_tokens": call.cached_tokens,
        "gen_ai.usage.cached_tokens": call.cached_tokens,
        "gabay.llm.stage": call.stage,
        "gabay.llm.cost_usd": call.cost_usd,
    }
