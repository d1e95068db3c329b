"""A fake OpenAI-compatible chat server (OpenAI or DeepSeek flavour) on 127.0.0.1.

A real HTTP server in a thread, so the real ``openai`` SDK talks real HTTP to it. Tests script
what it does with a queue of behaviours (answer, delay, 429, 500, trickle, hang, blank or
malformed JSON, 401, 400, 402, insufficient quota, ...); when the queue is empty it answers with
``responder(request_body)``. Every request is kept in ``requests`` for inspection.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.scripted import QuietHandler, ScriptedServer, serving

Responder = Callable[[dict[str, Any]], dict[str, Any] | str]
RETIRED = {"deepseek-chat", "deepseek-reasoner"}


@dataclass
class Behaviour:
    """What the server does for one request."""

    kind: str = "answer"  # answer | status | trickle | hang | raw
    content: Any = None  # JSON-able object, or a string sent as the message content
    status: int = 200
    error: dict[str, Any] | None = None  # the inner ``error`` object of an error body
    text_body: str | None = None  # a plain-text error body instead of JSON
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    finish_reason: str = "stop"
    usage: dict[str, int] | None = None


# Behaviours, named as in the API checklists ------------------------------------------------------

def answer(content: Any = None, delay: float = 0.0, **usage: int) -> Behaviour:
    return Behaviour(content=content, delay=delay, usage=usage or None)


def rate_limited(retry_after: str | None = None, retry_after_ms: str | None = None) -> Behaviour:
    headers = {}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    return Behaviour(kind="status", status=429, headers=headers, error={
        "message": "Rate limit reached for requests", "type": "requests", "param": None,
        "code": "rate_limit_exceeded"})


def insufficient_quota() -> Behaviour:
    return Behaviour(kind="status", status=429, headers={"retry-after-ms": "10"}, error={
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota", "param": None, "code": "insufficient_quota"})


def server_error(status: int = 500) -> Behaviour:
    return Behaviour(kind="status", status=status, headers={"retry-after-ms": "10"}, error={
        "message": "The server had an error processing your request.", "type": "server_error",
        "param": None, "code": None})


def unauthorized() -> Behaviour:
    return Behaviour(kind="status", status=401, error={
        "message": "Incorrect API key provided: sk-test****abcd.", "type": "invalid_request_error",
        "param": None, "code": "invalid_api_key"})


def bad_request(message: str = "Invalid request") -> Behaviour:
    return Behaviour(kind="status", status=400, error={
        "message": message, "type": "invalid_request_error", "param": None,
        "code": "invalid_request_error"})


def payment_required() -> Behaviour:
    return Behaviour(kind="status", status=402, error={
        "message": "Insufficient Balance", "type": "unknown_error", "param": None,
        "code": "invalid_request_error"})


def unprocessable_text() -> Behaviour:
    return Behaviour(kind="status", status=422,
                     text_body="Failed to deserialize the JSON body into the target type")


def blank() -> Behaviour:
    """DeepSeek's JSON mode when the output was not JSON: spaces, finish_reason stop."""
    return Behaviour(content="   \n  ")


def malformed() -> Behaviour:
    return Behaviour(content='{"questions": [ {"question": "cut off')


def insufficient_resource() -> Behaviour:
    return Behaviour(content="{}", finish_reason="insufficient_system_resource")


def trickle(seconds: float, interval: float = 0.1, content: Any = None) -> Behaviour:
    """200 headers, then a blank line every ``interval`` for ``seconds``, then the answer."""
    return Behaviour(kind="trickle", delay=seconds, content=content, headers={"interval": str(interval)})


def hang(seconds: float = 30.0) -> Behaviour:
    """Accept the request and say nothing for ``seconds``."""
    return Behaviour(kind="hang", delay=seconds)


class FakeLLMServer(ScriptedServer):
    """The server; ``flavour`` is ``openai`` or ``deepseek`` (usage fields, errors, base URL)."""

    def __init__(self, flavour: str = "openai", api_key: str = "sk-test-key",
                 responder: Responder | None = None) -> None:
        super().__init__(_Handler)
        self.flavour = flavour
        self.api_key = api_key
        self.responder: Responder = responder or (lambda body: {"ok": True})
        self.default: Behaviour = Behaviour()  # what to do when nothing is scripted
        self.inflight = 0
        self.max_inflight = 0
        self.closing = threading.Event()
        # -- LLM spend and provider limits: a prompt cache, RPM/TPM limits, a concurrency cap --
        self.cache: PromptCache | None = None  # model_caching() sets it: usage reports cache hits
        self.limits: MinuteLimits | None = None  # enforce_limits() sets it: 429 over RPM/TPM
        self.max_concurrency = 0  # > 0: a 429 for a call above this many in flight (DeepSeek)
        self.answered_429 = 0  # 429s the limits and the cap sent (scripted ones not counted)
        self.tokens_served = 0  # tokens of the calls answered with 200

    def model_caching(self) -> FakeLLMServer:
        """Report cached prompt tokens the way the provider's cache would (see PromptCache)."""
        self.cache = PromptCache(self.flavour)
        return self

    def enforce_limits(self, rpm: int, tpm: int) -> FakeLLMServer:
        """Answer 429 (with ``retry-after``) over ``rpm`` requests or ``tpm`` tokens a minute."""
        self.limits = MinuteLimits(rpm, tpm)
        return self

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1" if self.flavour == "openai" else self.root

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r["body"] for r in self.requests]

    def stop(self) -> None:
        self.closing.set()
        super().stop()

    def completion_body(self, request: dict[str, Any], behaviour: Behaviour) -> dict[str, Any]:
        content = behaviour.content
        if content is None:
            content = self.responder(request)
        text = content if isinstance(content, str) else json.dumps(content)
        prompt = sum(len(str(m.get("content", ""))) for m in request.get("messages", [])) // 4 + 1
        usage = {"prompt_tokens": prompt, "completion_tokens": len(text) // 4 + 1, "cached_tokens": 0}
        if self.cache is not None:
            usage["cached_tokens"] = self.cache.lookup(request, prompt)
        usage.update(behaviour.usage or {})
        return self._shape(request, text, behaviour.finish_reason, usage)

    def _shape(self, request: dict[str, Any], text: str, finish: str,
               counts: dict[str, int]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        prompt, completion = counts["prompt_tokens"], counts["completion_tokens"]
        cached = counts["cached_tokens"]
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "total_tokens": prompt + completion}
        if self.flavour == "deepseek":
            usage.update(prompt_cache_hit_tokens=cached, prompt_cache_miss_tokens=prompt - cached,
                         completion_tokens_details={"reasoning_tokens": 0})
            if (request.get("thinking") or {}).get("type") != "disabled":
                message["reasoning_content"] = "Let me think about this."
            model = request.get("model", "deepseek-flash")
        else:
            usage.update(prompt_tokens_details={"cached_tokens": cached, "audio_tokens": 0},
                         completion_tokens_details={"reasoning_tokens": 0, "audio_tokens": 0,
                                                    "accepted_prediction_tokens": 0,
                                                    "rejected_prediction_tokens": 0})
            model = str(request.get("model", "gpt-4o-mini")) + "-2024-07-18"
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
                "created": int(time.time()), "model": model, "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": usage}

    def automatic_error(self, request: dict[str, Any]) -> Behaviour | None:
        """What the real API rejects by itself, whatever was scripted."""
        if self.flavour != "deepseek":
            return None
        if request.get("model") in RETIRED:
            return bad_request("Model Not Exist")
        if (request.get("response_format") or {}).get("type") == "json_schema":
            return bad_request("This response_format type is unavailable now")
        return None


class _Handler(QuietHandler):
    fake: FakeLLMServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        body = json.loads(raw or b"{}")
        with self.fake.lock:
            self.fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                       "at": time.time()})
        if self.path not in ("/v1/chat/completions", "/chat/completions"):
            return self._error(404, {"message": "Not found", "type": "invalid_request_error",
                                     "param": None, "code": None})
        if self.headers.get("Authorization") != f"Bearer {self.fake.api_key}":
            return self._send_behaviour(body, unauthorized())
        behaviour = self.fake.automatic_error(body) or self.fake.next_behaviour() or self.fake.default
        with self.fake.lock:
            self.fake.inflight += 1
            self.fake.max_inflight = max(self.fake.max_inflight, self.fake.inflight)
            over_cap = 0 < self.fake.max_concurrency < self.fake.inflight
        try:
            if over_cap:
                self.fake.answered_429 += 1
                return self._error(429, {"message": "Too many concurrent requests", "type": "rate_limit",
                                         "param": None, "code": "rate_limit_exceeded"})
            if self.fake.limits is not None and behaviour.kind == "answer":
                return self._send_limited(body, behaviour)
            self._send_behaviour(body, behaviour)
        finally:
            with self.fake.lock:
                self.fake.inflight -= 1

    def _send_behaviour(self, body: dict[str, Any], behaviour: Behaviour) -> None:
        if behaviour.kind == "hang":
            self.fake.closing.wait(behaviour.delay)
            self.close_connection = True
            return None
        if behaviour.kind == "status":
            if behaviour.text_body is not None:
                return self._send(behaviour.status, behaviour.text_body.encode(), "text/plain",
                                  behaviour.headers)
            return self._error(behaviour.status, behaviour.error or {}, behaviour.headers)
        if behaviour.delay and behaviour.kind == "answer":
            self.fake.closing.wait(behaviour.delay)
        payload = json.dumps(self.fake.completion_body(body, behaviour)).encode()
        if behaviour.kind == "trickle":
            return self._trickle(payload, behaviour)
        return self._send(200, payload, "application/json", {})

    def _send_limited(self, body: dict[str, Any], behaviour: Behaviour) -> None:
        """An answer under the minute limits: 429 with retry-after when it does not fit."""
        limits = self.fake.limits
        assert limits is not None
        completion = self.fake.completion_body(body, behaviour)
        tokens = int(completion["usage"]["total_tokens"])
        with self.fake.lock:
            admitted, headers = limits.admit(tokens)
            if admitted:
                self.fake.tokens_served += tokens
            else:
                self.fake.answered_429 += 1
        if not admitted:
            return self._error(429, {"message": "Rate limit reached for tokens", "type": "tokens",
                                     "param": None, "code": "rate_limit_exceeded"}, headers)
        if behaviour.delay:
            self.fake.closing.wait(behaviour.delay)
        self._send(200, json.dumps(completion).encode(), "application/json", headers)

    def _trickle(self, payload: bytes, behaviour: Behaviour) -> None:
        interval = float(behaviour.headers.get("interval", "0.1"))
        lines = max(1, int(behaviour.delay / interval))
        self.send_response(200)
        self._common_headers("application/json", lines + len(payload))
        self.end_headers()
        try:
            for _ in range(lines):
                self.wfile.write(b"\n")
                self.wfile.flush()
                if self.fake.closing.wait(interval):
                    return
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True

    def _error(self, status: int, error: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps({"error": error}).encode(), "application/json", headers or {})

    def _send(self, status: int, payload: bytes, content_type: str, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self._common_headers(content_type, len(payload))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True

    def _common_headers(self, content_type: str, length: int) -> None:
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:16]}")
        if self.fake.flavour == "openai" and self.fake.limits is None:
            for name, value in (("x-ratelimit-limit-requests", "60"),
                                ("x-ratelimit-remaining-requests", "59"),
                                ("x-ratelimit-limit-tokens", "150000"),
                                ("x-ratelimit-remaining-tokens", "149984"),
                                ("x-ratelimit-reset-requests", "1s"),
                                ("x-ratelimit-reset-tokens", "6m0s")):
                self.send_header(name, value)
        else:
            self.send_header("x-ds-trace-id", uuid.uuid4().hex)


class PromptCache:
    """A provider's prompt cache, by prefix: a prompt's cached tokens are its longest common
    prefix with an earlier prompt (about 4 characters a token, as the usage counts). DeepSeek
    caches whole 64-token units of any earlier prompt of the account; OpenAI caches from 1024
    tokens, in 128-token steps, among prompts routed together (same ``prompt_cache_key``, else
    the same first 256 characters)."""

    def __init__(self, flavour: str) -> None:
        self.flavour = flavour
        self.seen: dict[str, list[str]] = {}
        self.lock = threading.Lock()

    def lookup(self, request: dict[str, Any], prompt_tokens: int) -> int:
        text = "".join(str(m.get("content", "")) for m in request.get("messages", []))
        if self.flavour == "deepseek":
            route = "account"
        else:
            route = str(request.get("prompt_cache_key") or text[:256])
        with self.lock:
            earlier = self.seen.setdefault(route, [])
            common = max((_common_prefix(text, old) for old in earlier), default=0)
            earlier.append(text)
            del earlier[:-200]
        tokens = min(common // 4, prompt_tokens)
        if self.flavour == "deepseek":
            return tokens - tokens % 64
        if prompt_tokens < 1024 or tokens < 1024:
            return 0
        return 1024 + (tokens - 1024) // 128 * 128


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix of two strings (binary search on slices)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


class MinuteLimits:
    """OpenAI-style limits: buckets of ``rpm`` requests and ``tpm`` tokens, refilled continuously
    over a minute; a call is admitted when both have room for it (its real total tokens)."""

    def __init__(self, rpm: int, tpm: int) -> None:
        self.rpm, self.tpm = rpm, tpm
        self.requests, self.tokens = float(rpm), float(tpm)
        self.at = time.monotonic()

    def admit(self, tokens: int) -> tuple[bool, dict[str, str]]:
        now = time.monotonic()
        elapsed, self.at = now - self.at, now
        self.requests = min(self.rpm, self.requests + elapsed * self.rpm / 60)
        self.tokens = min(self.tpm, self.tokens + elapsed * self.tpm / 60)
        admitted = self.requests >= 1 and self.tokens >= tokens
        if admitted:
            self.requests -= 1
            self.tokens -= tokens
        reset_requests = (self.rpm - self.requests) * 60 / self.rpm
        reset_tokens = (self.tpm - self.tokens) * 60 / self.tpm
        headers = {"x-ratelimit-limit-requests": str(self.rpm),
                   "x-ratelimit-limit-tokens": str(self.tpm),
                   "x-ratelimit-remaining-requests": str(int(self.requests)),
                   "x-ratelimit-remaining-tokens": str(int(self.tokens)),
                   "x-ratelimit-reset-requests": f"{reset_requests:.3f}s",
                   "x-ratelimit-reset-tokens": f"{reset_tokens:.3f}s"}
        if not admitted:
            short = max((1 - self.requests) * 60 / self.rpm, (tokens - self.tokens) * 60 / self.tpm, 0.001)
            headers["retry-after-ms"] = str(max(round(short * 1000), 1))
            headers["retry-after"] = str(max(round(short), 1))
        return admitted, headers


def exam_responder(body: dict[str, Any]) -> dict[str, Any]:
    """A competent fake examiner: drafts with the extractive generator, approves every draft."""
    from gabay.questions.models import Passage, QuestionTask
    from gabay.questions.offline.drafts import generate_drafts

    task = json.loads(body["messages"][1]["content"])  # the request (a re-ask appends after it)
    if task.get("task") == "validate_questions":
        return {"verdicts": [{"id": q["id"], "ok": True, "reason": ""} for q in task["questions"]]}
    if task.get("task") == "answer_questions":  # the blind round trip: a competent student, no key
        return blind_answers(task)
    wanted = sum(task["how_many"].values())
    levels = task.get("bloom_levels") or {}  # asked as counts; the writer takes them as shares
    brief = QuestionTask(job_id="fake", document_id="fake", count=wanted,
                         question_types=list(task["how_many"]), difficulty=task["difficulty"],
                         title=task.get("document_title", ""),
                         bloom_mix={k: n / sum(levels.values()) for k, n in levels.items()} or None,
                         passages=[Passage(**p) for p in task["passages"]])
    drafts = generate_drafts(brief, wanted)
    return {"questions": [d.model_dump(exclude={"id"}) for d in drafts]}


def blind_answers(task: dict[str, Any]) -> dict[str, Any]:
    """Answers to ``answer_questions`` from the passages alone, by the offline answerer."""
    from gabay.questions.models import Draft, Passage
    from gabay.questions.round_trip import answer_offline

    passages = [Passage(**p) for p in task["passages"]]
    return {"answers": [{"id": q["id"], "answer": answer_offline(
        Draft(id=q["id"], type=q["type"], question=q["question"], options=q.get("options") or [], answer="",
              passage_id=""), passages)} for q in task["questions"]]}


def running(flavour: str = "openai", **kwargs: Any) -> AbstractContextManager[FakeLLMServer]:
    """A started server, stopped at the end of the block."""
    return serving(FakeLLMServer(flavour, **kwargs))
