"""A fake Brevo transactional email API (``POST /v3/smtp/email``, ``GET /v3/smtp/emails``) on 127.0.0.1.

A real HTTP server in a thread, speaking Brevo's wire format: the ``api-key`` header (401 bodies
as Brevo sends them), the conditional required fields of the body (400 ``missing_parameter`` /
``invalid_parameter``), 201 with ``{"messageId": "<...@smtp-relay.mailin.fr>"}``, the
``x-sib-ratelimit-*`` headers on every answer, idempotency keys (``headers.idempotencyKey``)
remembered for ``key_ttl`` seconds (a repeat gets 400 ``duplicate_parameter``), and the sandbox
header ``X-Sib-Sandbox: drop``. Tests script the next answers to sends: 429 with a reset, 500,
400, 401, 402, a dropped connection, or an email accepted whose answer is lost on the way back.

Every accepted email is also listed, one entry per recipient, by the list of sent emails
(``GET /v3/smtp/emails``, see gabay.mail.brevo_log for the documented parameters and answer):
filters ``email``, ``messageId``, ``templateId`` (one of them mandatory), ``startDate``/``endDate``
(YYYY-MM-DD, both or neither, at most a month apart; the past 30 days without them), ``sort``,
``limit`` (500) and ``offset``; the answer ``{"count", "transactionalEmails": [{"email",
"subject", "messageId", "uuid", "date", "from", "tags"}]}``. Its answers are scripted apart from
the sends' (``script_log``). Switches: ``deduplicate=False`` accepts a repeated idempotency key
as a new email (a Brevo that did not de-duplicate), ``lose_answers`` accepts every email and
drops the connection before answering, ``log_delay`` lists an email that many seconds after
accepting it. The wording of the list's 400 messages is ours; their codes are Brevo's.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import time
import uuid
from collections import deque
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.scripted import QuietHandler, ScriptedServer, serving

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RATE_LIMIT = 1000
#: What the list of sent emails covers when no dates are given.
LIST_DEFAULT_DAYS = 30
LIST_DEFAULT_LIMIT = 500


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
    """The server; ``accepted`` holds every email it accepted (what a recipient would get).

    ``listed`` holds the entries of the list of sent emails (oldest first), each with the epoch
    ``at`` it was accepted and ``visible_at`` from which the list shows it.
    """

    def __init__(self, api_key: str = "xkeysib-test-key", key_ttl: float = 1800.0,
                 deduplicate: bool = True) -> None:
        super().__init__(_Handler)
        self.api_key = api_key
        self.key_ttl = key_ttl
        self.deduplicate = deduplicate
        self.lose_answers = False
        self.log_delay = 0.0
        self.accepted: list[dict[str, Any]] = []
        self.listed: list[dict[str, Any]] = []
        self.keys: dict[str, float] = {}
        self.log_behaviours: deque[Behaviour] = deque()

    @property
    def base_url(self) -> str:
        return f"{self.root}/v3"

    @property
    def sends(self) -> list[dict[str, Any]]:
        """The ``POST`` requests (attempts to send), in order."""
        with self.lock:
            return [r for r in self.requests if r["method"] == "POST"]

    @property
    def log_queries(self) -> list[dict[str, Any]]:
        """The ``GET`` requests (looks at the list of sent emails), in order."""
        with self.lock:
            return [r for r in self.requests if r["method"] == "GET"]

    def script_log(self, *behaviours: Behaviour) -> None:
        """Queue answers for the next requests to the list of sent emails."""
        with self.lock:
            self.log_behaviours.extend(behaviours)

    def next_log_behaviour(self) -> Behaviour | None:
        with self.lock:
            return self.log_behaviours.popleft() if self.log_behaviours else None

    def log_email(self, to: str, tags: list[str], subject: str = "Another email",
                  at: float | None = None, sender: str = "feedback@school.example") -> dict[str, Any]:
        """List an email as if Brevo had accepted it (another email to the same student, say)."""
        at = time.time() if at is None else at
        entry = {"email": to, "subject": subject, "messageId": _message_id(), "uuid": str(uuid.uuid4()),
                 "date": _iso(at), "from": sender, "tags": list(tags), "at": at, "visible_at": at}
        with self.lock:
            self.listed.append(entry)
        return entry

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
            seen = key is not None and now - self.keys.get(key, -1e18) < self.key_ttl
            if seen and self.deduplicate:
                return 400, {"code": "duplicate_parameter",
                             "message": "Request with the same idempotency key already processed"}
            if key is not None:
                self.keys[key] = now
            message_id = _message_id()
            if headers.get("X-Sib-Sandbox") != "drop":
                self.accepted.append({**body, "messageId": message_id})
                self._list(body, message_id)
        return 201, {"messageId": message_id}

    def _list(self, body: dict[str, Any], message_id: str) -> None:
        at = time.time()
        for to in body["to"]:
            entry: dict[str, Any] = {
                "email": to["email"], "subject": body["subject"], "messageId": message_id,
                "uuid": str(uuid.uuid4()), "date": _iso(at), "from": body["sender"]["email"],
                "at": at, "visible_at": at + self.log_delay}
            if body.get("tags"):
                entry["tags"] = list(body["tags"])
            if "templateId" in body:
                entry["templateId"] = body["templateId"]
            self.listed.append(entry)

    def list_emails(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        """The answer of ``GET /smtp/emails`` to ``query`` (parsed query string)."""
        params = {name: values[-1] for name, values in query.items()}
        problem, window = _check_list_query(params)
        if problem is not None:
            return 400, problem
        start, end = window
        now = time.time()
        with self.lock:
            entries = [e for e in self.listed if e["visible_at"] <= now and start <= e["at"] < end
                       and _matches(e, params)]
        entries.sort(key=lambda e: e["at"], reverse=params.get("sort", "desc") == "desc")
        offset, limit = int(params.get("offset", 0)), int(params.get("limit", LIST_DEFAULT_LIMIT))
        page = [{k: v for k, v in e.items() if k not in ("at", "visible_at")}
                for e in entries[offset:offset + limit]]
        return 200, {"count": len(entries), "transactionalEmails": page}


def _message_id() -> str:
    return f"<{time.strftime('%Y%m%d%H%M%S')}.{uuid.uuid4().hex[:12]}@smtp-relay.mailin.fr>"


def _iso(at: float) -> str:
    """Brevo's form of a date: ``2019-05-25T11:53:26.000Z``."""
    moment = dt.datetime.fromtimestamp(at, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _matches(entry: dict[str, Any], params: dict[str, str]) -> bool:
    if "email" in params and entry["email"].lower() != params["email"].lower():
        return False
    if "messageId" in params and entry["messageId"] != params["messageId"]:
        return False
    return "templateId" not in params or str(entry.get("templateId")) == params["templateId"]


def _check_list_query(params: dict[str, str]) -> tuple[dict[str, str] | None, tuple[float, float]]:
    """The 400 body for a bad query of the list (or None), and the window of dates it covers."""
    now = time.time()
    default = (now - LIST_DEFAULT_DAYS * 86400, now + 1)
    if not any(params.get(name) for name in ("email", "templateId", "messageId")):
        return {"code": "missing_parameter", "message": "email, templateId or messageId is required"}, default
    for name in ("limit", "offset"):
        if name in params and not params[name].isdigit():
            return {"code": "invalid_parameter", "message": f"{name} should be a positive integer"}, default
    if params.get("sort", "desc") not in ("asc", "desc"):
        return {"code": "invalid_parameter", "message": "sort should be asc or desc"}, default
    if ("startDate" in params) != ("endDate" in params):
        missing = "endDate" if "startDate" in params else "startDate"
        return {"code": "missing_parameter", "message": f"{missing} is missing"}, default
    if "startDate" not in params:
        return None, default
    if not (DATE.match(params["startDate"]) and DATE.match(params["endDate"])):
        return {"code": "invalid_parameter", "message": "dates should be YYYY-MM-DD"}, default
    start = dt.datetime.strptime(params["startDate"], "%Y-%m-%d").replace(tzinfo=dt.UTC)
    end = dt.datetime.strptime(params["endDate"], "%Y-%m-%d").replace(tzinfo=dt.UTC) + dt.timedelta(days=1)
    if start >= end or end - start > dt.timedelta(days=32):
        return {"code": "invalid_parameter", "message": "the period can be at most one month"}, default
    return None, (start.timestamp(), end.timestamp())


def check_body(body: Any) -> dict[str, str] | None:
    """The 400 body Brevo would send for this request body, or None when it is acceptable."""
    if not isinstance(body, dict):
        return {"code": "bad_request", "message": "Invalid JSON body"}
    return _check_sender(body) or _check_reply_to(body) or _check_to(body) or _check_content(body)


def _check_reply_to(body: dict[str, Any]) -> dict[str, str] | None:
    """``replyTo`` is optional; when present it is one object with a valid ``email``."""
    if "replyTo" not in body:
        return None
    reply_to = body["replyTo"]
    if not isinstance(reply_to, dict) or not EMAIL.match(str(reply_to.get("email", ""))):
        return {"code": "invalid_parameter", "message": "replyTo email is not valid"}
    return None


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
    return _check_attachment(body)


def _check_attachment(body: dict[str, Any]) -> dict[str, str] | None:
    """``attachment``: a list of ``{"name", "content"}`` (base64) or ``{"url"}`` objects."""
    if "attachment" not in body:
        return None
    items = body["attachment"]
    if not isinstance(items, list) or not items:
        return {"code": "invalid_parameter", "message": "attachment should be an array of objects"}
    for item in items:
        if not isinstance(item, dict) or not (item.get("url") or item.get("content")):
            return {"code": "invalid_parameter", "message": "attachment needs url or content"}
        if item.get("content"):
            try:
                base64.b64decode(str(item["content"]), validate=True)
            except ValueError:
                return {"code": "invalid_parameter", "message": "attachment content is not base64"}
            if not str(item.get("name", "")).lower().endswith(".pdf"):
                return {"code": "invalid_parameter", "message": "attachment name needs an allowed extension"}
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
        self._record("POST", body)
        if self.path.rstrip("/") not in ("/v3/smtp/email", "/smtp/email"):
            return self._answer(404, {"code": "not_found", "message": "Invalid route"})
        unauthorized = self.fake.check_key(self.headers.get("api-key"))
        if unauthorized is not None:
            return self._answer(401, unauthorized)
        return self._behave(self.fake.next_behaviour(), body)

    def do_GET(self) -> None:
        self._record("GET", None)
        url = urlsplit(self.path)
        if url.path.rstrip("/") not in ("/v3/smtp/emails", "/smtp/emails"):
            return self._answer(404, {"code": "not_found", "message": "Invalid route"})
        unauthorized = self.fake.check_key(self.headers.get("api-key"))
        if unauthorized is not None:
            return self._answer(401, unauthorized)
        behaviour = self.fake.next_log_behaviour()
        if behaviour is not None and behaviour.kind == "status":
            return self._answer(behaviour.status, behaviour.body, reset=behaviour.reset)
        if behaviour is not None:
            return self._drop()
        return self._answer(*self.fake.list_emails(parse_qs(url.query)))

    def _record(self, method: str, body: Any) -> None:
        url = urlsplit(self.path)
        with self.fake.lock:
            self.fake.requests.append({"method": method, "path": url.path, "query": parse_qs(url.query),
                                       "headers": dict(self.headers), "body": body,
                                       "at": time.monotonic(), "client": self.client_address})

    def _behave(self, behaviour: Behaviour | None, body: Any) -> None:
        if behaviour is not None and behaviour.kind == "status":
            return self._answer(behaviour.status, behaviour.body, reset=behaviour.reset)
        if behaviour is not None and behaviour.kind == "drop":
            return self._drop()
        status, answer = self.fake.accept(body)
        lost = self.fake.lose_answers or (behaviour is not None and behaviour.kind == "accept_then_drop")
        if lost:
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
