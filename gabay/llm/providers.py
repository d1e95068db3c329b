"""LLM providers: which chat endpoints to ask for what, the fallback chain, the offline record.

The calls themselves are :mod:`gabay.llm.chat`. Drafting prefers DeepSeek, validation and feedback
prefer OpenAI; a ``ProviderUnavailable`` moves on to the next provider of the chain, a
``ProviderRejected`` fails fast. Every call, failed ones too, is recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gabay.errors import ProviderError, ProviderRejected, ProviderUnavailable
from gabay.jobs import LLMCall
from gabay.llm.chat import DEEPSEEK, DEFAULT_MAX_TOKENS, OPENAI, ChatProvider, Completion
from gabay.settings import Settings

logger = logging.getLogger(__name__)

#: The provider and model names recorded for work done without any LLM.
OFFLINE = "offline"
OFFLINE_MODEL = "extractive-v1"


def offline_call(stage: str, duration_ms: float = 0.0) -> LLMCall:
    """The record of work done by the offline (extractive) provider: no tokens, no cost."""
    return LLMCall(stage=stage, provider=OFFLINE, model=OFFLINE_MODEL, duration_ms=duration_ms)


def provider_chain(settings: Settings, purpose: str) -> list[ChatProvider]:
    """The providers to try, in order, for ``draft``, ``validate`` or ``feedback``.

    Drafting prefers DeepSeek (cheap), validation and feedback prefer OpenAI; the other provider
    is the fallback when its key is set. An empty list means no key at all: use the offline path.
    """
    openai_model = settings.feedback_model if purpose == "feedback" else settings.openai_chat_model
    found: dict[str, ChatProvider] = {}
    if settings.openai_api_key is not None:
        found[OPENAI] = ChatProvider(OPENAI, openai_model, api_key=settings.openai_api_key,
                                     base_url=settings.openai_base_url, settings=settings)
    if settings.deepseek_api_key is not None:
        found[DEEPSEEK] = ChatProvider(DEEPSEEK, settings.deepseek_model,
                                       api_key=settings.deepseek_api_key,
                                       base_url=settings.deepseek_base_url, settings=settings)
    if purpose == "draft":
        order = (DEEPSEEK, OPENAI)
    elif purpose in ("validate", "feedback"):
        order = (OPENAI, DEEPSEEK)
    else:
        raise ValueError(f"unknown purpose {purpose!r}; expected draft, validate or feedback")
    return [found[name] for name in order if name in found]


def complete_with_fallback(chain: list[ChatProvider], system: str, user: str, *, stage: str,
                           record: Callable[[LLMCall], None],
                           max_tokens: int = DEFAULT_MAX_TOKENS) -> Completion:
    """Try each provider in order; every call (failed ones too) goes through ``record``.

    ProviderRejected is re-raised at once; ProviderUnavailable moves on to the next provider and
    is raised, naming every failure, when all of them failed.
    """
    if not chain:
        raise ProviderUnavailable("no LLM provider configured (set OPENAI_API_KEY or DEEPSEEK_API_KEY)")
    failures: list[str] = []
    for provider in chain:
        try:
            completion = provider.complete_json(system, user, stage=stage, max_tokens=max_tokens)
        except ProviderError as exc:
            if isinstance(exc.call, LLMCall):
                record(exc.call)
            if isinstance(exc, ProviderRejected):
                raise
            logger.warning("%s failed for %s, trying the next provider: %s", provider.name, stage, exc)
            failures.append(str(exc))
            continue
        record(completion.call)
        return completion
    raise ProviderUnavailable("every provider failed: " + "; ".join(failures))
