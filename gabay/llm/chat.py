"""One OpenAI-compatible chat endpoint (OpenAI or DeepSeek) through the official ``openai`` SDK.

A call either returns a parsed JSON object with its cost (:class:`Completion`) or raises one of
two errors: :class:`ProviderUnavailable` (transient: 5xx, timeouts, connection errors, 429 after
the SDK's own retries, blank or invalid JSON, DeepSeek's ``insufficient_system_resource``), on
which the next provider of the chain takes over, or :class:`ProviderRejected` (401, 400, 403,
404, 422), which fails fast. Quota or billing exhaustion (429 ``insufficient_quota``, DeepSeek's
402) is :class:`ProviderQuotaExhausted`, a kind of unavailability: the other provider takes over.
Either carries the record of the failed call.
Error messages name the provider and the reason, never the key (fragments of keys that servers
echo are redacted).

The SDK's timeout limits each read, not the whole call (a server that trickles blank lines keeps
a call alive for ever), so every call runs in a helper thread and is abandoned at
``LLM_TIMEOUT`` seconds; its connection is then cut (:mod:`gabay.llm.abortable`), which ends the
helper. The calling thread waits in short slices, so that an interrupt raised into it (a cancel of
the job, see :mod:`gabay.middleware.cancellation`) cuts the call at once too.

With a :class:`~gabay.limits.provider_budget.ProviderBudget`, every call first reserves its
estimated tokens in the shared budget of its provider x model x key and settles to the real usage
(and the limits its headers state) after; a 429 then holds the key cluster-wide until its reset
(:class:`ProviderHeld`) instead of being retried by the SDK. OpenAI also gets
``prompt_cache_key`` (one per document or form); no per-student ``user`` value is ever sent.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from gabay.errors import (
    ProviderError,
    ProviderHeld,
    ProviderQuotaExhausted,
    ProviderRejected,
    ProviderUnavailable,
)
from gabay.jobs import LLMCall
from gabay.limits.provider_budget import Limits, ProviderBudget, RateHeaders, Scope, Ticket
from gabay.llm.abortable import AbortableTransport
from gabay.llm.pricing import cost_usd
from gabay.settings import Settings
from gabay.tracing import child_span, set_attributes
from gabay.tracing.genai import request_attributes, usage_attributes

if TYPE_CHECKING:
    import openai

logger = logging.getLogger(__name__)

OPENAI = "openai"
DEEPSEEK = "deepseek"

DEFAULT_MAX_TOKENS = 4096
SDK_MAX_RETRIES = 2
#: Error codes of a 429 that retrying cannot fix (the account is out of money).
QUOTA_CODES = frozenset({"insufficient_quota", "credit_balance_exhausted"})
#: Completion tokens reserved in the budget before a call (settled to the real count after).
COMPLETION_ESTIMATE = 1024
#: Hold after a 429 that names no reset, ms.
DEFAULT_HOLD_MS = 1_000
NO_LIMITS = Limits()
_KEY_LIKE = re.compile(r"(sk-[A-Za-z0-9_\-*.]{3,}|\*{3,}[A-Za-z0-9]{0,8})")


@dataclass(frozen=True)
class Completion:
    """A provider's answer: the parsed JSON object and the record of the call."""

    data: dict[str, Any]
    call: LLMCall
    text: str = ""  # the raw answer (a re-ask shows it back to the model)


@dataclass(frozen=True)
class Repair:
    """A re-ask: the previous answer and what was wrong with it."""

    answer: str
    error: str

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "assistant", "content": self.answer},
                {"role": "user", "content": "That JSON answer is not valid: " + self.error[:500]
                 + ". Answer again with one corrected JSON object only."}]


class ChatProvider:
    """One OpenAI-compatible chat endpoint (OpenAI or DeepSeek) with one model."""

    def __init__(self, name: str, model: str, *, api_key: SecretStr, base_url: str,
                 settings: Settings, max_retries: int = SDK_MAX_RETRIES,
                 budget: ProviderBudget | None = None, limits: Limits = NO_LIMITS) -> None:
        self.name = name
        self.model = model
        self.base_url = base_url
        self.settings = settings
        self.budget = budget
        self.limits = limits
        # Under a shared budget the SDK never retries by itself: a 429 holds the key instead.
        self.max_retries = 0 if budget is not None else max_retries
        self._api_key = api_key
        self.scope = Scope.of(name, model, api_key.get_secret_value())

    def __repr__(self) -> str:
        return f"ChatProvider({self.name!r}, {self.model!r}, base_url={self.base_url!r})"

    def complete_json(self, system: str, user: str, *, stage: str, **options: Any) -> Completion:
        """:meth:`complete` in an LLM span when tracing is on (see gabay.tracing.genai)."""
        with child_span(f"chat {self.model}", request_attributes(
                self.name, self.model, self.base_url,
                max_tokens=options.get("max_tokens", DEFAULT_MAX_TOKENS),
                temperature=options.get("temperature", 0.2))) as span:
            try:
                completion = self.complete(system, user, stage=stage, **options)
            except ProviderError as exc:
                call = exc.call if isinstance(exc.call, LLMCall) else None
                set_attributes(span, {**usage_attributes(call), "error.type": type(exc).__name__})
                raise
            set_attributes(span, usage_attributes(completion.call))
            return completion

    def complete(self, system: str, user: str, *, stage: str,
                 max_tokens: int = DEFAULT_MAX_TOKENS, temperature: float = 0.2,
                 cache_key: str | None = None, repair: Repair | None = None) -> Completion:
        """Ask for one JSON object; the prompts must mention JSON (json_object mode requires it).

        ``cache_key``: OpenAI's ``prompt_cache_key`` (the document's or form's). ``repair``: a
        re-ask, the previous answer and its error appended after the same prefix.
        """
        request = self._request(system, user, max_tokens, temperature, cache_key, repair)
        ticket = self._reserve(request, max_tokens)
        started = time.monotonic()
        transport = AbortableTransport()
        sdk = _sdk()
        client = sdk.OpenAI(api_key=self._api_key.get_secret_value(), base_url=self.base_url,
                            timeout=self.settings.llm_timeout, max_retries=self.max_retries,
                            http_client=sdk.DefaultHttpxClient(transport=transport))
        box: dict[str, Any] = {}
        worker = threading.Thread(target=_run_into, args=(client, request, box), daemon=True,
                                  name=f"gabay-llm-{self.name}")
        worker.start()
        try:
            _join(worker, self.settings.llm_timeout)
        except BaseException:  # an interrupt of this thread (a cancel, a time limit): end the call
            transport.abort()
            client.close()
            self._settle(ticket, ticket.estimate if ticket else 0, {})
            raise
        if worker.is_alive():
            transport.abort()  # cut the connection; the helper thread then ends with an error
            client.close()
            self._settle(ticket, ticket.estimate if ticket else 0, {})  # it may still be counted
            raise self._failed(ProviderUnavailable, f"{self.name} did not answer within "
                               f"LLM_TIMEOUT={self.settings.llm_timeout:g} s", stage, started)
        client.close()
        if "error" in box:
            error = box["error"]
            headers = _headers_of(error)
            self._settle(ticket, 0, headers)
            kind, reason = self._convert(error)
            failure = self._failed(kind, reason, stage, started)
            if getattr(error, "status_code", None) == 429 and kind is ProviderUnavailable:
                failure = self._hold(headers, reason, failure)
            raise failure from error
        response, headers = box["response"], box.get("headers", {})
        call = self._call(response, stage, started)
        self._settle(ticket, call.prompt_tokens + call.completion_tokens, headers)
        try:
            text, data = self._parse(response)
        except ProviderUnavailable as exc:  # answered, but unusable: the call's tokens still count
            failed = call.model_copy(update={"ok": False, "error": str(exc)})
            raise ProviderUnavailable(str(exc), call=failed) from exc
        logger.info("%s %s (%s): %d prompt (%d cached) + %d completion tokens, $%.6f, %.0f ms",
                    self.name, self.model, stage, call.prompt_tokens, call.cached_tokens,
                    call.completion_tokens, call.cost_usd, call.duration_ms)
        return Completion(data=data, call=call, text=text)

    def _reserve(self, request: dict[str, Any], max_tokens: int) -> Ticket | None:
        """Take the call's estimated tokens from the shared budget (raises ProviderHeld)."""
        if self.budget is None:
            return None
        return self.budget.acquire(self.scope, self.limits, estimate_tokens(request, max_tokens))

    def _settle(self, ticket: Ticket | None, used: int, headers: Any) -> None:
        if ticket is not None and self.budget is not None:
            self.budget.settle(ticket, used, RateHeaders.parse(headers or {}))

    def _hold(self, headers: Any, reason: str, failure: ProviderError) -> ProviderError:
        """A 429: hold this key cluster-wide until its reset (when there is a shared budget)."""
        if self.budget is None:
            return failure
        wait = RateHeaders.parse(headers or {}).reset_ms or DEFAULT_HOLD_MS
        held = self.budget.hold(self.scope, wait, reason)
        logger.warning("%s %s held cluster-wide for %d ms after HTTP 429", self.name, self.model, held)
        return ProviderHeld(reason, retry_in_ms=held, call=failure.call)

    def _request(self, system: str, user: str, max_tokens: int, temperature: float,
                 cache_key: str | None = None, repair: Repair | None = None) -> dict[str, Any]:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        if repair is not None:
            messages += repair.messages()
        request: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "response_format": {"type": "json_object"},
            "temperature": temperature,
        }
        if self.name == DEEPSEEK:
            request["max_tokens"] = max_tokens
            request["extra_body"] = {"thinking": {"type": "disabled"}}
        else:
            request["max_completion_tokens"] = max_tokens
            if cache_key:
                request["extra_body"] = {"prompt_cache_key": cache_key}
        return request

    def _call(self, response: Any, stage: str, started: float) -> LLMCall:
        usage = response.usage
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        cached = getattr(usage, "prompt_cache_hit_tokens", None)  # DeepSeek
        if cached is None:
            details = getattr(usage, "prompt_tokens_details", None)
            cached = getattr(details, "cached_tokens", 0) if details is not None else 0
        cached = int(cached or 0)
        return LLMCall(
            stage=stage, provider=self.name, model=self.model, prompt_tokens=prompt,
            cached_tokens=cached, completion_tokens=completion,
            cost_usd=cost_usd(self.settings, self.model, prompt, cached, completion),
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )

    def _parse(self, response: Any) -> tuple[str, dict[str, Any]]:
        if not response.choices:
            raise ProviderUnavailable(f"{self.name} returned no choices")
        choice = response.choices[0]
        if choice.finish_reason in ("insufficient_system_resource", "length", "content_filter"):
            raise ProviderUnavailable(f"{self.name} stopped early: finish_reason={choice.finish_reason}")
        content = choice.message.content or ""
        if not content.strip():
            raise ProviderUnavailable(f"{self.name} returned blank JSON output")
        try:
            data = json.loads(content)
        except json.JSONDecodeError as exc:
            raise ProviderUnavailable(f"{self.name} returned invalid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise ProviderUnavailable(f"{self.name} returned JSON that is not an object")
        return content, data

    def _convert(self, exc: BaseException) -> tuple[type[ProviderError], str]:
        """Which error an SDK exception becomes (ProviderUnavailable or ProviderRejected), and why."""
        openai = _sdk()
        if isinstance(exc, openai.APIStatusError):
            detail = _error_detail(exc, self._api_key)
            code = str(exc.code or "")
            if exc.status_code == 429 and (code in QUOTA_CODES or exc.type in QUOTA_CODES):
                return ProviderQuotaExhausted, f"{self.name} quota exhausted ({detail})"
            if exc.status_code == 402:
                return ProviderQuotaExhausted, f"{self.name} balance exhausted ({detail})"
            if exc.status_code in (408, 409, 429) or exc.status_code >= 500:
                return ProviderUnavailable, f"{self.name} unavailable: {detail}"
            return ProviderRejected, f"{self.name} rejected the request: {detail}"
        if isinstance(exc, openai.APITimeoutError):
            return ProviderUnavailable, f"{self.name} timed out"
        if isinstance(exc, openai.APIConnectionError):
            return ProviderUnavailable, f"{self.name} unreachable: connection error"
        if isinstance(exc, openai.APIResponseValidationError):
            return ProviderUnavailable, f"{self.name} sent a malformed response"
        return ProviderUnavailable, f"{self.name} call failed: {type(exc).__name__}"

    def _failed(self, kind: type[ProviderError], reason: str, stage: str, started: float) -> ProviderError:
        """The error of a call that got no usable answer, with its record (no tokens) attached."""
        call = LLMCall(stage=stage, provider=self.name, model=self.model, ok=False, error=reason,
                       duration_ms=round((time.monotonic() - started) * 1000, 1))
        return kind(reason, call=call)


@cache
def _sdk() -> Any:
    """The ``openai`` package, imported at the first call: it takes about 1 s and 40 MB, which a
    worker that never calls a model (offline, or only sending emails) does not pay."""
    return importlib.import_module("openai")


#: How often the waiting thread wakes up, so that an exception raised into it (a cancel, a time
#: limit) is seen within this many seconds instead of at the end of the call.
JOIN_SLICE = 0.05


def _join(worker: threading.Thread, timeout: float) -> None:
    """``worker.join(timeout)`` in short slices: a blocked join does not see thread interrupts."""
    deadline = time.monotonic() + timeout
    while worker.is_alive():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        worker.join(min(JOIN_SLICE, left))


def _run_into(client: openai.OpenAI, request: dict[str, Any], box: dict[str, Any]) -> None:
    try:
        raw = client.chat.completions.with_raw_response.create(**request)
        box["headers"] = dict(raw.headers)
        box["response"] = raw.parse()
    except BaseException as exc:  # handed to the waiting thread
        box["error"] = exc


def _headers_of(exc: BaseException) -> dict[str, str]:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return dict(headers) if headers is not None else {}


def estimate_tokens(request: dict[str, Any], max_tokens: int) -> int:
    """What a call may use, before it is made: its prompt (about 3 characters a token, on the
    safe side) and up to ``COMPLETION_ESTIMATE`` completion tokens."""
    chars = sum(len(str(m.get("content", ""))) for m in request.get("messages", []))
    return chars // 3 + 1 + min(max_tokens, COMPLETION_ESTIMATE)


def _error_detail(exc: openai.APIStatusError, key: SecretStr) -> str:
    """``HTTP 401 authentication_error: <message>`` with anything key-like redacted."""
    message = exc.message if isinstance(exc.body, dict) else ""
    if isinstance(exc.body, dict) and isinstance(exc.body.get("message"), str):
        message = exc.body["message"]
    elif isinstance(exc.body, str):
        message = exc.body
    message = message.replace(key.get_secret_value(), "[redacted]")
    message = _KEY_LIKE.sub("[redacted]", message)[:300]
    kind = exc.type or exc.code or ""
    return " ".join(part for part in (f"HTTP {exc.status_code}", f"{kind}:" if kind else "", message)
                    if part).rstrip(":")
