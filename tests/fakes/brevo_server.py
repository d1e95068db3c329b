"""A fake Brevo transactional email API (``POST /v3/smtp/email``) on 127.0.0.1.

A real HTTP server in a thread, speaking Brevo's wire format: the ``api-key`` header (401 bodies
as Brevo sends them), the conditional required fields of the body (400 ``missing_parameter`` /
``invalid_parameter``), 201 with ``{"messageId": "<...@smtp-relay.mailin.fr>"}``, the
``x-sib-ratelimit-*`` headers on every answer, idempotency keys (``headers.idempotencyKey``)
remembered for ``key_ttl`` seconds (a repeat gets 400 ``duplicate_parameter``), and the sandbox
header ``X-Sib-Sandbox: drop``. Tests script the next answers: 429 with a reset, 500, 400, 401,
402, a dropped connection, or an email accepted whose answer is lost on the way back.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.scripted import QuietHandler, ScriptedServer, serving

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
RATE_LIMIT = 1000


@dataclass
class Behaviour:
    """What the server does with one request instead of its normal processing."""

    kind: str  # status | drop | accept_then_drop
    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    reset: int = 1


def rate_limited(reset: int = 1) -> Behaviour:
    return Behaviour("status", 429, {"code": "too_many_requests", "message": "Too many requests"}, reset)


def server_error(status: int = 500) -> Behaviour:
    return Behaviour("status", status, {"code": "internal_error", "message": "Internal server error"})


def bad_request(message: str = "email is not valid in to") -> Behaviour:
    return Behaviour("status", 400, {"code": "invalid_parameter", "message": message})


def unauthorized() -> Behaviour:
    return Behaviour("status", 401, {"code": "unauthorized", "message": "Key not found"})


def not_enough_credits() -> Behaviour:
    return Behaviour("status", 402, {"code": "not_enough_credits", "message": "Not enough credits"})


def drop() -> Behaviour:
    """Close the connection without an answer (nothing accepted)."""
    return Behaviour("drop")


def accept_then_drop() -> Behaviour:
    """Accept the email, then close the connection: the client never learns it was accepted."""
    return Behaviour("accept_then_drop")


class FakeBrevo(ScriptedServer):
    """The server; ``accepted`` holds every email it accepted (what a recipient would get)."""

    def __init__(self, api_key: str = "xkeysib-test-key", key_ttl: float = 1800.0) -> None:
        super().__init__(_Handler)
        self.api_key = api_key
        self.key_ttl = key_ttl
        self.accepted: list[dict[str, Any]] = []
        self.keys: dict[str, float] = {}

    @property
    def base_url(self) -> str:
        return f"{self.root}/v3"

    def check_key(self, key: str | None) -> dict[str, str] | None:
        if not key:
            return {"message": "authentication not found in headers", "code": "unauthorized"}
        if key != self.api_key:
            return {"code": "unauthorized", "message": "Key not found"}
        return None

    def accept(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Validate and accept (or refuse as a duplicate) one email."""
        problem = check_body(body)
        if problem is not None:
            return 400, problem
        headers = body.get("headers") or {}
        key = headers.get("idempotencyKey")
        now = time.monotonic()
        with self.lock:
            if key is not None and now - self.keys.get(key, -1e18) < self.key_ttl:
                return 400, {"code": "duplicate_parameter",
                             "message": "Request with the same idempotency key already processed"}
            if key is not None:
                self.keys[key] = now
            message_id = f"<{time.strftime('%Y%m%d%H%M%S')}.{uuid.uuid4().hex[:12]}@smtp-relay.mailin.fr>"
            if headers.get("X-Sib-Sandbox") != "drop":
                self.accepted.append({**body, "messageId": message_id})
        return 201, {"messageId": message_id}


def check_body(body: Any) -> dict[str, str] | None:
    """The 400 body Brevo would send for this request body, or None when it is acceptable."""
    if not isinstance(body, dict):
        return {"code": "bad_request", "message": "Invalid JSON body"}
    return _check_sender(body) or _check_to(body) or _check_content(body)


def _check_sender(body: dict[str, Any]) -> dict[str, str] | None:
    sender = body.get("sender")
    if not isinstance(sender, dict):
        return {"code": "missing_parameter", "message": "sender is missing"}
    if not EMAIL.match(str(sender.get("email", ""))) or len(str(sender.get("name", ""))) > 70:
        return {"code": "invalid_parameter", "message": "valid sender email required"}
    return None


def _check_to(body: dict[str, Any]) -> dict[str, str] | None:
    to = body.get("to")
    if not isinstance(to, list) or not to:
        return {"code": "invalid_parameter", "message": "unexpected recipients: want atleast 1, got 0"}
    for item in to:
        if not isinstance(item, dict) or not EMAIL.match(str(item.get("email", ""))):
            return {"code": "invalid_parameter", "message": "email is not valid in to"}
        if len(str(item.get("name", ""))) > 70:
            return {"code": "invalid_parameter", "message": "name is too long in to"}
    return None


def _check_content(body: dict[str, Any]) -> dict[str, str] | None:
    if not isinstance(body.get("subject"), str) or not body["subject"]:
        return {"code": "missing_parameter", "message": "subject is missing"}
    if not body.get("htmlContent") and not body.get("textContent"):
        return {"code": "missing_parameter", "message": "htmlContent is missing"}
    tags = body.get("tags", [])
    if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        return {"code": "invalid_parameter", "message": "tags should be an array of strings"}
    if "headers" in body and not isinstance(body["headers"], dict):
        return {"code": "invalid_parameter", "message": "headers should be an object"}
    return None


class _Handler(QuietHandler):
    fake: FakeBrevo

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        try:
            body: Any = json.loads(raw or b"null")
        except ValueError:
            body = None
        with self.fake.lock:
            self.fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                       "at": time.monotonic(), "client": self.client_address})
        if self.path.rstrip("/") not in ("/v3/smtp/email", "/smtp/email"):
            return self._answer(404, {"code": "not_found", "message": "Invalid route"})
        unauthorized = self.fake.check_key(self.headers.get("api-key"))
        if unauthorized is not None:
            return self._answer(401, unauthorized)
        return self._behave(self.fake.next_behaviour(), body)

    def _behave(self, behaviour: Behaviour | None, body: Any) -> None:
        if behaviour is not None and behaviour.kind == "status":
            return self._answer(behaviour.status, behaviour.body, reset=behaviour.reset)
        if behaviour is not None and behaviour.kind == "drop":
            return self._drop()
        status, answer = self.fake.accept(body)
        if behaviour is not None and behaviour.kind == "accept_then_drop":
            return self._drop()
        return self._answer(status, answer)

    def _drop(self) -> None:
        self.close_connection = True
        self.connection.close()

    def _answer(self, status: int, body: dict[str, Any], reset: int = 1) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=utf-8")
        self.send_header("content-length", str(len(payload)))
        self.send_header("x-sib-ratelimit-limit", str(RATE_LIMIT))
        self.send_header("x-sib-ratelimit-remaining", "0" if status == 429 else str(RATE_LIMIT - 1))
        self.send_header("x-sib-ratelimit-reset", str(reset))
        self.end_headers()
        self.wfile.write(payload)


def running(**kwargs: Any) -> AbstractContextManager[FakeBrevo]:
    """A started fake Brevo, stopped at the end of the block."""
    return serving(FakeBrevo(**kwargs))
