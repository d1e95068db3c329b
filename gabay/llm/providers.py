"""LLM providers: which chat endpoints to ask for what, the fallback chain, the offline record.

The calls themselves are :mod:`gabay.llm.chat`. Drafting prefers DeepSeek, validation and feedback
prefer OpenAI. In the chain:

* an answer that fails the caller's ``check`` (schema-invalid) is re-asked once on the same
  provider with the validation error (``LLM_REASKS``), after the same cached prefix, before the
  next provider takes over;
* ``ProviderUnavailable`` moves on to the next provider; so does quota or billing exhaustion
  (``ProviderQuotaExhausted``), which also makes every process skip that key for
  ``QUOTA_HOLD_MS`` (as unavailable, not as busy: nobody waits for it) and is remembered for the
  ``provider_quota`` alert;
* ``ProviderHeld`` (the shared budget has no room, or a 429 holds the key) moves on too; when
  every provider was held, ``ProviderHeld`` is raised with the earliest time to try again, so the
  job can wait without spending a retry;
* ``ProviderRejected`` fails fast.

Every call, failed ones too, is recorded. A configured OpenAI model past its shutdown date is
replaced by its successor (:mod:`gabay.llm.models`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gabay.errors import (
    ProviderError,
    ProviderHeld,
    ProviderQuotaExhausted,
    ProviderRejected,
    ProviderUnavailable,
)
from gabay.jobs import LLMCall
from gabay.limits.provider_budget import (
    QUOTA_HOLD_REASON,
    Limits,
    ProviderBudget,
    note_quota_exhausted,
)
from gabay.llm.chat import DEEPSEEK, DEFAULT_MAX_TOKENS, OPENAI, ChatProvider, Completion, Repair
from gabay.llm.models import model_in_service
from gabay.settings import Settings

logger = logging.getLogger(__name__)

#: The provider and model names recorded for work done without any LLM.
OFFLINE = "offline"
OFFLINE_MODEL = "extractive-v1"
#: How long a key whose account is out of quota is skipped by every process, ms.
QUOTA_HOLD_MS = 300_000

#: Raises (ProviderUnavailable or ValueError, with the reason) when an answer is not usable.
Check = Callable[[dict[str, Any]], object]
#: Raises BudgetExhausted when a call of about this many tokens would exceed the job's budget.
Allowance = Callable[[int], None]


def offline_call(stage: str, duration_ms: float = 0.0) -> LLMCall:
    """The record of work done by the offline (extractive) provider: no tokens, no cost."""
    return LLMCall(stage=stage, provider=OFFLINE, model=OFFLINE_MODEL, duration_ms=duration_ms)


def provider_limits(settings: Settings, name: str) -> Limits:
    """The limits assumed for a provider's keys until its response headers tell the real ones."""
    if name == OPENAI:
        return Limits(settings.llm_openai_rpm, settings.llm_openai_tpm, 0)
    return Limits(settings.llm_deepseek_rpm, settings.llm_deepseek_tpm, settings.llm_deepseek_concurrency)


def provider_chain(settings: Settings, purpose: str,
                   budget: ProviderBudget | None = None) -> list[ChatProvider]:
    """The providers to try, in order, for ``draft``, ``validate`` or ``feedback``.

    Drafting prefers DeepSeek (cheap), validation and feedback prefer OpenAI; the other provider
    is the fallback when its key is set. An empty list means no key at all: use the offline path.
    ``budget``: the shared provider budget every call reserves from (None: no shared limit).
    """
    openai_model = settings.feedback_model if purpose == "feedback" else settings.openai_chat_model
    openai_model = model_in_service(openai_model)
    found: dict[str, ChatProvider] = {}
    if settings.openai_api_key is not None:
        found[OPENAI] = ChatProvider(OPENAI, openai_model, api_key=settings.openai_api_key,
                                     base_url=settings.openai_base_url, settings=settings,
                                     budget=budget, limits=provider_limits(settings, OPENAI))
    if settings.deepseek_api_key is not None:
        found[DEEPSEEK] = ChatProvider(DEEPSEEK, settings.deepseek_model,
                                       api_key=settings.deepseek_api_key,
                                       base_url=settings.deepseek_base_url, settings=settings,
                                       budget=budget, limits=provider_limits(settings, DEEPSEEK))
    if purpose == "draft":
        order = (DEEPSEEK, OPENAI)
    elif purpose in ("validate", "feedback"):
        order = (OPENAI, DEEPSEEK)
    else:
        raise ValueError(f"unknown purpose {purpose!r}; expected draft, validate or feedback")
    return [found[name] for name in order if name in found]


def complete_with_fallback(chain: list[ChatProvider], system: str, user: str, *, stage: str,
                           record: Callable[[LLMCall], None],
                           max_tokens: int = DEFAULT_MAX_TOKENS, cache_key: str | None = None,
                           check: Check | None = None, reasks: int | None = None,
                           allowance: Allowance | None = None) -> Completion:
    """Try each provider in order; every call (failed ones too) goes through ``record``.

    ``check`` validates an answer; a failing one is re-asked ``reasks`` times (default
    ``LLM_REASKS``) on the same provider with the error. ``allowance`` is asked before every call
    (the job's token budget). ProviderRejected (and BudgetExhausted) is re-raised at once;
    ProviderUnavailable moves on to the next provider and is raised, naming every failure, when
    all of them failed (ProviderHeld when every one was held by the budget).
    """
    if not chain:
        raise ProviderUnavailable("no LLM provider configured (set OPENAI_API_KEY or DEEPSEEK_API_KEY)")
    failures: list[str] = []
    held: list[int] = []
    for provider in chain:
        try:
            return _ask(provider, system, user, stage=stage, record=record, max_tokens=max_tokens,
                        cache_key=cache_key, check=check, allowance=allowance,
                        reasks=provider.settings.llm_reasks if reasks is None else reasks)
        except ProviderError as exc:
            if isinstance(exc.call, LLMCall):
                record(exc.call)
            if isinstance(exc, ProviderRejected) or not isinstance(exc, ProviderUnavailable):
                raise
            if isinstance(exc, ProviderHeld):
                held.append(exc.retry_in_ms)
            elif isinstance(exc, ProviderQuotaExhausted) and exc.call is not None:  # the provider said so
                _quota_exhausted(provider, str(exc))
            logger.warning("%s failed for %s, trying the next provider: %s", provider.name, stage, exc)
            failures.append(str(exc))
    if len(held) == len(chain):
        raise ProviderHeld("every provider is held by its budget: " + "; ".join(failures),
                           retry_in_ms=min(held))
    raise ProviderUnavailable("every provider failed: " + "; ".join(failures))


def _ask(provider: ChatProvider, system: str, user: str, *, stage: str,
         record: Callable[[LLMCall], None], max_tokens: int, cache_key: str | None,
         check: Check | None, allowance: Allowance | None, reasks: int) -> Completion:
    """One provider: the call, then up to ``reasks`` re-asks of an answer ``check`` refuses."""
    repair: Repair | None = None
    for attempt in range(reasks + 1):
        if allowance is not None:
            allowance(len(system) // 3 + len(user) // 3 + min(max_tokens, 1024))
        completion = provider.complete_json(system, user, stage=stage, max_tokens=max_tokens,
                                            cache_key=cache_key, repair=repair)
        if check is None:
            record(completion.call)
            return completion
        try:
            check(completion.data)
        except (ProviderUnavailable, ValueError) as exc:
            error = str(exc)
            failed = completion.call.model_copy(update={"ok": False, "error": f"invalid answer: {error}"})
            if attempt == reasks:
                raise ProviderUnavailable(f"{provider.name} answer not valid after {reasks} "
                                          f"re-ask(s): {error}", call=failed) from None
            record(failed)
            logger.info("%s answer for %s not valid, asking again: %s", provider.name, stage, error)
            repair = Repair(completion.text, error)
            continue
        record(completion.call)
        return completion
    raise AssertionError("unreachable")  # pragma: no cover


def _quota_exhausted(provider: ChatProvider, reason: str) -> None:
    """Skip this key cluster-wide for a while and remember it for the provider_quota alert."""
    if provider.budget is None:
        return
    provider.budget.hold(provider.scope, QUOTA_HOLD_MS, QUOTA_HOLD_REASON)
    note_quota_exhausted(provider.budget.client, provider.budget.keys, provider.name, reason)
