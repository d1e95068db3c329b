"""A generic JSON webhook: ``POST <ALERT_WEBHOOK_URL>`` with the notification as JSON.

Body (version 1, compact JSON, UTF-8)::

    {"version": 1, "id": "<incident id>", "event": "firing" | "resolved", "rule": "queue_depth",
     "subject": "generation", "severity": "warning", "summary": "...", "details": {...},
     "opened_at": 1764770000.0, "resolved_at": null, "source": "host:pid",
     "dashboard_url": "https://..." | null, "test": false, "sent_at": 1764770001.2}

Headers: ``Content-Type: application/json``, ``X-Gabay-Alert: <id>:<event>`` (the same on every
attempt: de-duplicate by it), ``X-Gabay-Event: <event>``, and with ``ALERT_WEBHOOK_SECRET``
``X-Gabay-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` (check it with :func:`verify`;
``sent_at`` lets a receiver refuse old replays). A 2xx answer is delivery; 429 and 5xx are retried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import requests

from gabay.alerts.http import HideFromLogs, post_with_retries
from gabay.alerts.notification import Notification

SIGNATURE_HEADER = "X-Gabay-Signature"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secret: str) -> bool:
    """True when ``header`` is the signature of ``body`` with ``secret`` (constant time)."""
    return header is not None and hmac.compare_digest(sign(body, secret), header)


def body_of(notification: Notification, sent_at: float) -> bytes:
    return json.dumps({**notification.as_json(), "sent_at": sent_at}, separators=(",", ":"),
                      default=str).encode()


class WebhookChannel:
    """One JSON endpoint, optionally signed."""

    name = "webhook"

    def __init__(self, url: str, session: requests.Session, *, secret: str | None, timeout: float,
                 retries: int, backoff: float = 1.0) -> None:
        self._url = url
        HideFromLogs(url).install()
        self._secret = secret
        self.session = session
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    def __repr__(self) -> str:
        return "WebhookChannel(url=**********)"

    def deliver(self, notification: Notification) -> None:
        body = body_of(notification, time.time())
        headers = {"Content-Type": "application/json", "X-Gabay-Alert": notification.dedupe_key,
                   "X-Gabay-Event": notification.state}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(body, self._secret)
        post_with_retries(self.session, self._url, body, headers, channel=self.name,
                          timeout=self.timeout, retries=self.retries, backoff=self.backoff)
