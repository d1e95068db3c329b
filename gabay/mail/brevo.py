"""Brevo's transactional email API (``POST /smtp/email``) with ``requests``, one attempt per call.

Retries are the worker's (Dramatiq's backoff), not ours, so that a retry is a fresh message
attempt that checks the sent record first. Every attempt carries the same idempotency key (in the
body's ``headers`` object, as Brevo wants it): Brevo answers ``duplicate_parameter`` to a repeat
within 30 minutes, which means the email was already accepted. Every attempt also carries the
email's own tag (:func:`email_tag`, derived from that key, never from the student's name or
address), by which :mod:`gabay.mail.brevo_log` finds the email in Brevo's list of sent emails
when an attempt may have sent it. Outcomes:

- 201: accepted, with a ``messageId``; ``duplicate_parameter``: accepted earlier (no id).
- 429: :class:`EmailRetryable` with ``retry_after`` from ``x-sib-ratelimit-reset``; surely not sent.
- 5xx, timeout, connection error: :class:`EmailRetryable`; the email may have been accepted.
- 400, 401, 402, 403 and other 4xx: :class:`EmailRejected`, final.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import requests
import urllib3

from gabay.errors import ConfigError, EmailRejected, EmailRetryable
from gabay.mail.render import RenderedEmail
from gabay.settings import Settings
from gabay.tracing import child_span, set_attributes

logger = logging.getLogger(__name__)

DUPLICATE = "duplicate_parameter"
DEFAULT_RETRY_AFTER = 5.0
#: Prefix of the tag that names one email in Brevo's logs.
TAG_PREFIX = "gabay-email:"


def email_tag(idempotency_key: str) -> str:
    """The tag that identifies one email in Brevo's logs: unique per email, free of personal data."""
    return TAG_PREFIX + idempotency_key


@dataclass(frozen=True)
class BrevoResult:
    """An accepted email: ``message_id`` is None when Brevo accepted it on an earlier attempt."""

    message_id: str | None
    duplicate: bool = False


def request_body(message: RenderedEmail, idempotency_key: str) -> dict[str, Any]:
    """The JSON body of ``POST /smtp/email`` (camelCase keys, as the API documents them)."""
    sender: dict[str, str] = {"email": message.sender.email}
    if message.sender.display_name:
        sender["name"] = message.sender.display_name
    to: dict[str, str] = {"email": message.to.email}
    if message.to.display_name:
        to["name"] = message.to.display_name
    body: dict[str, Any] = {
        "sender": sender,
        "to": [to],
        "subject": message.subject,
        "htmlContent": message.html,
        "textContent": message.text,
        "tags": [*message.tags, email_tag(idempotency_key)],
        "headers": {**message.headers, "idempotencyKey": idempotency_key},
    }
    if message.reply_to is not None:  # Brevo's ``replyTo``: {"email", "name"}
        reply_to = {"email": message.reply_to.email}
        if message.reply_to.display_name:
            reply_to["name"] = message.reply_to.display_name
        body["replyTo"] = reply_to
    if message.attachments:  # Brevo's ``attachment``: [{"name", "content": base64}]
        body["attachment"] = [{"name": a.name, "content": base64.b64encode(a.content).decode("ascii")}
                              for a in message.attachments]
    return body


class BrevoClient:
    """Sends one email per call; the API key is only ever put in the ``api-key`` header.

    Give it a long-lived ``session`` (see :mod:`gabay.mail.mailer`) to reuse connections.
    """

    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        if settings.brevo_api_key is None:
            raise ConfigError("BREVO_API_KEY is not set")
        self._key = settings.brevo_api_key.get_secret_value()
        self.url = settings.brevo_base_url.rstrip("/") + "/smtp/email"
        self.timeout = settings.brevo_timeout
        self.session = session or requests.Session()

    def send(self, message: RenderedEmail, idempotency_key: str) -> BrevoResult:
        """One POST, in a client span when tracing is on (the email's ids only, no address)."""
        with child_span("POST /smtp/email", {"http.request.method": "POST", "server.address":
                                             urlparse(self.url).hostname or "",
                                             "gabay.email.idempotency_key": idempotency_key}) as span:
            result = self._post(message, idempotency_key)
            set_attributes(span, {"gabay.email.message_id": result.message_id,
                                  "gabay.email.duplicate": result.duplicate})
            return result

    def _post(self, message: RenderedEmail, idempotency_key: str) -> BrevoResult:
        headers = {"api-key": self._key, "accept": "application/json", "content-type": "application/json"}
        try:
            response = self.session.post(self.url, json=request_body(message, idempotency_key),
                                         headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            if never_sent(exc):
                raise EmailRetryable(f"Brevo unreachable ({type(exc).__name__} before the request "
                                     "was sent)", maybe_sent=False) from None
            if isinstance(exc, requests.Timeout):
                raise EmailRetryable(f"Brevo did not answer within {self.timeout:g} s") from None
            raise EmailRetryable(f"Brevo unreachable: {type(exc).__name__}") from None
        return self._outcome(response)

    def _outcome(self, response: requests.Response) -> BrevoResult:
        status = response.status_code
        body = json_object(response)
        code, text = str(body.get("code", "")), redact(str(body.get("message", "")), self._key)[:300]
        if status in (200, 201, 202):
            message_id = body.get("messageId")
            logger.info("Brevo accepted the email: %s", message_id)
            return BrevoResult(message_id if isinstance(message_id, str) else None)
        if code.lower() == DUPLICATE:
            logger.info("Brevo already accepted this email (duplicate idempotency key)")
            return BrevoResult(None, duplicate=True)
        detail = f"HTTP {status}" + (f" {code}" if code else "") + (f": {text}" if text else "")
        if status == 429:
            raise EmailRetryable(f"Brevo rate limit reached ({detail})", retry_after=reset_seconds(response),
                                 maybe_sent=False)
        if status >= 500:
            raise EmailRetryable(f"Brevo server error ({detail})")
        raise EmailRejected(f"Brevo rejected the email ({detail})")


def never_sent(exc: requests.RequestException) -> bool:
    """True when the request failed while connecting, before any of it could reach Brevo.

    Connection refused, a failed DNS lookup, no route, a connect timeout and a failed TLS
    handshake: the email surely did not go out, so a later attempt is not "maybe a duplicate".
    A timeout or a dropped connection after the request was written may have sent it.
    """
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError carries the cause
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def redact(text: str, key: str) -> str:
    """``text`` with the API key replaced, so that an echoed key never reaches an error or a log."""
    return text.replace(key, "[redacted]") if key else text


def json_object(response: requests.Response) -> dict[str, Any]:
    """The answer's JSON object, or ``{}`` when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def reset_seconds(response: requests.Response) -> float:
    """``x-sib-ratelimit-reset``: seconds until the window resets (not an epoch)."""
    try:
        return max(float(response.headers.get("x-sib-ratelimit-reset", "")), 1.0)
    except ValueError:
        return DEFAULT_RETRY_AFTER
