"""Fake alert receivers on 127.0.0.1: a Slack incoming webhook and a generic JSON webhook.

Slack's wire format (https://api.slack.com/messaging/webhooks, "Handling errors"): ``POST
/services/T…/B…/<secret>`` with a JSON body; ``200`` and the text body ``ok`` when accepted;
``400 invalid_payload`` for a body that is not JSON, ``400 no_text`` when it has neither ``text``
nor ``blocks``; ``404 no_service`` for a path that is not the webhook's (a revoked or mistyped
URL); ``429`` with a ``Retry-After`` header (seconds) when rate limited; ``500 rollup_error``.
Slack's error bodies are plain text, like its ``ok``. The generic receiver answers ``200 {}``.
Tests script the next answers (``script(rate_limited(1), ok())``); every request is kept.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from tests.fakes.scripted import QuietHandler, ScriptedServer, serving

SLACK_PATH = "/services/T0GABAY01/B0ALERTS1/s3cr3tW3bh00kT0k3n"


@dataclass(frozen=True)
class Answer:
    status: int
    body: str = ""
    retry_after: int | None = None


def ok() -> Answer:
    return Answer(200, "ok")


def rate_limited(retry_after: int = 1) -> Answer:
    return Answer(429, "rate_limited", retry_after)


def no_service() -> Answer:
    return Answer(404, "no_service")


def server_error(status: int = 500) -> Answer:
    return Answer(status, "rollup_error")


class FakeReceiver(ScriptedServer):
    """``kind`` is ``slack`` or ``webhook``; ``url`` is what the settings get."""

    def __init__(self, kind: str) -> None:
        super().__init__(_Handler)
        self.kind = kind

    @property
    def url(self) -> str:
        return self.root + (SLACK_PATH if self.kind == "slack" else "/hooks/gabay-alerts")

    def accepted(self) -> list[dict[str, Any]]:
        """Requests answered with a 2xx, in order."""
        with self.lock:
            return [r for r in self.requests if 200 <= r["status"] < 300]

    def events(self) -> list[tuple[str, str]]:
        """(state, rule) of every accepted notification, in order."""
        found = []
        for request in self.accepted():
            body = request["json"]
            if self.kind == "webhook":
                found.append((body["event"], body["rule"]))
            else:
                title = body["text"]
                state = "resolved" if "[RESOLVED]" in title else "firing"
                found.append((state, title))
        return found

    def answer_for(self, path: str, body: Any) -> Answer:
        if self.kind == "slack":
            if path != SLACK_PATH:
                return no_service()
            if not isinstance(body, dict):
                return Answer(400, "invalid_payload")
            if not body.get("text") and not body.get("blocks"):
                return Answer(400, "no_text")
        elif not isinstance(body, dict):
            return Answer(400, '{"error": "invalid json"}')
        scripted = self.next_behaviour()
        if scripted is not None:
            return scripted
        return ok() if self.kind == "slack" else Answer(200, "{}")


class _Handler(QuietHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        answer = self.fake.answer_for(self.path, body)
        with self.fake.lock:
            self.fake.requests.append({"path": self.path, "headers": dict(self.headers), "raw": raw,
                                       "json": body, "status": answer.status})
        payload = answer.body.encode()
        self.send_response(answer.status)
        kind = "application/json" if self.fake.kind == "webhook" else "text/html"
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(payload)))
        if answer.retry_after is not None:
            self.send_header("retry-after", str(answer.retry_after))
        self.end_headers()
        self.wfile.write(payload)


def slack() -> AbstractContextManager[FakeReceiver]:
    return serving(FakeReceiver("slack"))


def webhook() -> AbstractContextManager[FakeReceiver]:
    return serving(FakeReceiver("webhook"))
