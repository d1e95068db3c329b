"""One OpenAI-compatible chat endpoint (OpenAI or DeepSeek) through the official ``openai`` SDK.

A call either returns a parsed JSON object with its cost (:class:`Completion`) or raises one of
two errors: :class:`ProviderUnavailable` (transient: 5xx, timeouts, connection errors, 429 after
the SDK's own retries, blank or invalid JSON, DeepSeek's ``insufficient_system_resource``), on
which the next provider of the chain takes over, or :class:`ProviderRejected` (401, 400, 402, 403,
404, 422, ``insufficient_quota``), which fails fast. Either carries the record of the failed call.
Error messages name the provider and the reason, never the key (fragments of keys that servers
echo are redacted).

The SDK's timeout limits each read, not the whole call (a server that trickles blank lines keeps
a call alive for ever), so every call runs in a helper thread and is abandoned at
``LLM_TIMEOUT`` seconds; the helper's HTTP client is closed to cut the connection.
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

from gabay.errors import ProviderError, ProviderRejected, ProviderUnavailable
from gabay.jobs import LLMCall
from gabay.llm.pricing import cost_usd
from gabay.settings import Settings

if TYPE_CHECKING:
    import openai

logger = logging.getLogger(__name__)

OPENAI = "openai"
DEEPSEEK = "deepseek"

DEFAULT_MAX_TOKENS = 4096
SDK_MAX_RETRIES = 2
#: Error codes of a 429 that retrying cannot fix (the account is out of money).
QUOTA_CODES = frozenset({"insufficient_quota", "credit_balance_exhausted"})
_KEY_LIKE = re.compile(r"(sk-[A-Za-z0-9_\-*.]{3,}|\*{3,}[A-Za-z0-9]{0,8})")


@dataclass(frozen=True)
class Completion:
    """A provider's answer: the parsed JSON object and the record of the call."""

    data: dict[str, Any]
    call: LLMCall


class ChatProvider:
    """One OpenAI-compatible chat endpoint (OpenAI or DeepSeek) with one model."""

    def __init__(self, name: str, model: str, *, api_key: SecretStr, base_url: str,
                 settings: Settings, max_retries: int = SDK_MAX_RETRIES) -> None:
        self.name = name
        self.model = model
        self.base_url = base_url
        self.settings = settings
        self.max_retries = max_retries
        self._api_key = api_key

    def __repr__(self) -> str:
        return f"ChatProvider({self.name!r}, {self.model!r}, base_url={self.base_url!r})"

    def complete_json(self, system: str, user: str, *, stage: str,
                      max_tokens: int = DEFAULT_MAX_TOKENS, temperature: float = 0.2) -> Completion:
        """Ask for one JSON object; the prompts must mention JSON (json_object mode requires it)."""
        started = time.monotonic()
        client = _sdk().OpenAI(api_key=self._api_key.get_secret_value(), base_url=self.base_url,
                               timeout=self.settings.llm_timeout, max_retries=self.max_retries)
        box: dict[str, Any] = {}
        request = self._request(system, user, max_tokens, temperature)
        worker = threading.Thread(target=_run_into, args=(client, request, box), daemon=True,
                                  name=f"gabay-llm-{self.name}")
        worker.start()
        worker.join(self.settings.llm_timeout)
        if worker.is_alive():
            client.close()  # cut the connection; the abandoned thread then ends with an error
            raise self._failed(ProviderUnavailable, f"{self.name} did not answer within "
                               f"LLM_TIMEOUT={self.settings.llm_timeout:g} s", stage, started)
        client.close()
        if "error" in box:
            kind, reason = self._convert(box["error"])
            raise self._failed(kind, reason, stage, started) from box["error"]
        response = box["response"]
        call = self._call(response, stage, started)
        try:
            data = self._parse(response)
        except ProviderUnavailable as exc:  # answered, but unusable: the call's tokens still count
            failed = call.model_copy(update={"ok": False, "error": str(exc)})
            raise ProviderUnavailable(str(exc), call=failed) from exc
        logger.info("%s %s (%s): %d prompt + %d completion tokens, $%.6f, %.0f ms", self.name,
                    self.model, stage, call.prompt_tokens, call.completion_tokens, call.cost_usd,
                    call.duration_ms)
        return Completion(data=data, call=call)

    def _request(self, system: str, user: str, max_tokens: int, temperature: float) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response_format": {"type": "json_object"},
            "temperature": temperature,
        }
        if self.name == DEEPSEEK:
            request["max_tokens"] = max_tokens
            request["extra_body"] = {"thinking": {"type": "disabled"}}
        else:
            request["max_completion_tokens"] = max_tokens
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

    def _parse(self, response: Any) -> dict[str, Any]:
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
        return data

    def _convert(self, exc: BaseException) -> tuple[type[ProviderError], str]:
        """Which error an SDK exception becomes (ProviderUnavailable or ProviderRejected), and why."""
        openai = _sdk()
        if isinstance(exc, openai.APIStatusError):
            detail = _error_detail(exc, self._api_key)
            code = str(exc.code or "")
            if exc.status_code == 429 and (code in QUOTA_CODES or exc.type in QUOTA_CODES):
                return ProviderRejected, f"{self.name} rejected the request: quota exhausted ({detail})"
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


def _run_into(client: openai.OpenAI, request: dict[str, Any], box: dict[str, Any]) -> None:
    try:
        box["response"] = client.chat.completions.create(**request)
    except BaseException as exc:  # handed to the waiting thread
        box["error"] = exc


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
