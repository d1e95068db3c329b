"""Slack through an incoming webhook: ``POST <SLACK_WEBHOOK_URL>`` with Slack's message JSON.

The payload has ``text`` (the fallback Slack shows in notifications and where blocks cannot be
shown) and ``blocks``: a header, a section with the summary and the facts, a context line (rule,
subject, incident id, the sending host) and, with ``ALERT_DASHBOARD_URL``, an actions block with a
link button to the dashboard. Slack answers ``200 ok``; ``429`` with ``Retry-After``; ``400
invalid_payload``, ``403 action_prohibited``, ``404 no_service`` / ``channel_not_found``, ``410
channel_is_archived`` (final); ``500 rollup_error`` (retried). The webhook URL is the credential:
it is a SecretStr and never logged.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from gabay.alerts.http import HideFromLogs, post_with_retries
from gabay.alerts.notification import Notification

#: Slack's limits: section text 3000 characters, header 150, button text 75.
SECTION_MAX = 3000
HEADER_MAX = 150
EMOJI = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}


def mrkdwn_escape(text: str) -> str:
    """Slack's three control characters in message text (``&``, ``<``, ``>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(note: Notification) -> dict[str, Any]:
    """The message JSON of one notification."""
    facts = "\n".join(f"• *{mrkdwn_escape(str(k))}*: {mrkdwn_escape(_short(v))}"
                      for k, v in note.details.items())
    body = f"*{mrkdwn_escape(note.summary)}*\n{note.when()}" + (f"\n{facts}" if facts else "")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                    "text": f"{EMOJI[note.state]} {note.title}"[:HEADER_MAX]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": body[:SECTION_MAX]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn_escape(
            f"rule {note.rule} · subject {note.subject} · {note.severity} · "
            f"incident {note.incident_id} · from {note.source}")}]},
    ]
    if note.dashboard_url:
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "text": {"type": "plain_text", "text": "Open the dashboard"},
            "url": note.dashboard_url, "action_id": "gabay-dashboard",
        }]})
    return {"text": f"{note.title} ({note.rule}, {note.when()})", "blocks": blocks}


class SlackChannel:
    """One incoming webhook."""

    name = "slack"

    def __init__(self, url: str, session: requests.Session, *, timeout: float, retries: int,
                 backoff: float = 1.0) -> None:
        self._url = url
        HideFromLogs(url).install()
        self.session = session
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    def __repr__(self) -> str:
        return "SlackChannel(url=**********)"

    def deliver(self, notification: Notification) -> None:
        body = json.dumps(payload(notification)).encode()
        post_with_retries(self.session, self._url, body, {"Content-Type": "application/json"},
                          channel=self.name, timeout=self.timeout, retries=self.retries,
                          backoff=self.backoff)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 300 else text[:297] + "..."
