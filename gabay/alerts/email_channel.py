"""Alert emails through the same Mailer as the feedback emails (Brevo, or the file outbox).

One email per operator address of ``ALERT_EMAIL_TO``, plain HTML (escaped) and text. The
idempotency key (and the outbox file name) is derived from the incident, the event and the
address, so a second attempt of the same notification is de-duplicated by Brevo for 30 minutes
and is a no-op in the outbox. A transient Mailer error (429, 5xx, no answer) is retried after the
wait the provider asked for or a doubling backoff; a rejected email is final.
"""

from __future__ import annotations

import html
import re
import time
import uuid
from collections.abc import Callable

from gabay.alerts.notification import Notification
from gabay.errors import AlertDeliveryFailed, EmailRejected, EmailRetryable
from gabay.mail.mailer import Mailer
from gabay.mail.render import Address, RenderedEmail

MAX_WAIT = 60.0


def render(note: Notification, sender: Address, to: Address) -> RenderedEmail:
    """The alert email: subject is the title; the body lists the facts."""
    facts = [(str(k), v if isinstance(v, str) else repr(v)) for k, v in note.details.items()]
    rows = [("rule", note.rule), ("subject", note.subject), ("severity", note.severity),
            ("when", note.when()), ("incident", note.incident_id), ("from", note.source), *facts]
    text = note.title + "\n\n" + "\n".join(f"{k}: {v}" for k, v in rows)
    cells = "".join(f"<tr><th align=\"left\">{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                    for k, v in rows)
    link = ""
    if note.dashboard_url:
        text += f"\n\nDashboard: {note.dashboard_url}\n"
        link = f'<p><a href="{html.escape(note.dashboard_url, quote=True)}">Open the dashboard</a></p>'
    body = (f"<!doctype html><html><body><h2>{html.escape(note.title)}</h2>"
            f"<table cellpadding=\"4\">{cells}</table>{link}</body></html>")
    return RenderedEmail(sender=sender, to=to, subject=f"[gabay] {note.title}"[:250], html=body,
                         text=text + "\n", tags=["gabay-alert", f"gabay-alert-{note.rule}"])


class EmailChannel:
    """Emails every address of ``recipients`` through ``mailer``."""

    name = "email"

    def __init__(self, mailer: Mailer, sender: Address, recipients: list[str], *, retries: int,
                 backoff: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.mailer = mailer
        self.sender = sender
        self.recipients = recipients
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep

    def deliver(self, notification: Notification) -> None:
        problems = []
        for index, address in enumerate(self.recipients):
            try:
                self._send(notification, address, index)
            except AlertDeliveryFailed as exc:
                problems.append(exc)
        if problems:
            permanent = all(p.permanent for p in problems)
            raise AlertDeliveryFailed("; ".join(str(p) for p in problems), permanent=permanent)

    def _send(self, note: Notification, address: str, index: int) -> None:
        message = render(note, self.sender, Address(address))
        key = str(uuid.uuid5(uuid.NAMESPACE_URL, f"gabay-alert:{note.dedupe_key}:{address}"))
        name = re.sub(r"[^A-Za-z0-9._-]", "_", f"alert-{note.rule}-{note.state}-{key[:8]}-{index}")
        for attempt in range(self.retries + 1):
            try:
                self.mailer.send(message, key, name + ".eml")
                return
            except EmailRejected as exc:
                raise AlertDeliveryFailed(f"email refused ({self.mailer.via}): {exc}",
                                          permanent=True) from None
            except EmailRetryable as exc:
                if attempt == self.retries:
                    raise AlertDeliveryFailed(f"email not sent ({self.mailer.via}): {exc}") from None
                self.sleep(min(exc.retry_after or self.backoff * 2 ** attempt, MAX_WAIT))
            except OSError as exc:  # the outbox directory
                raise AlertDeliveryFailed(f"email not written ({self.mailer.via}): "
                                          f"{type(exc).__name__}") from None
