"""Send a rendered email at most once: Brevo when ``BREVO_API_KEY`` is set, else the file outbox.

The steps of one attempt, and what a crash between them leaves behind:

1. claim the sent record (:mod:`gabay.mail.sent_records`): ``sent`` ends the attempt, nothing is sent;
2. send (Brevo with the submission's idempotency key, or one hard-linked ``.eml``);
3. ``mark_sent`` with the message id or the file path, before the job returns.

A crash after 2 and before 3 leaves ``sending`` with a lease; once the lease expires, the next
attempt sends again with the same idempotency key (Brevo answers ``duplicate_parameter``: accepted
earlier) or finds the ``.eml`` in place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from gabay.errors import EmailRejected, EmailRetryable, EmailUncertain
from gabay.mail.brevo import BrevoClient
from gabay.mail.outbox import write_once
from gabay.mail.render import RenderedEmail, to_mime
from gabay.mail.sent_records import IDEMPOTENCY_WINDOW, SentRecords
from gabay.settings import Settings

logger = logging.getLogger(__name__)

#: Test hook: called with ``"sent"`` right after the provider accepted (before the sent record is
#: written), then with ``"recorded"`` after it.
Hook = Callable[[str], None]


@dataclass(frozen=True)
class Delivery:
    """Where an email went; ``earlier`` is True when an earlier attempt had sent it."""

    via: str
    message_id: str | None = None
    outbox_path: str | None = None
    earlier: bool = False

    @classmethod
    def from_record(cls, record: dict[str, str]) -> Delivery:
        return cls(via=record.get("via", ""), message_id=record.get("message_id") or None,
                   outbox_path=record.get("outbox_path") or None, earlier=True)

    def describe(self) -> str:
        where = self.outbox_path or self.message_id or "accepted by an earlier attempt"
        return f"{self.via}: {where}"


def deliver_once(settings: Settings, records: SentRecords, job_id: str, idempotency_key: str,
                 message: RenderedEmail, file_name: str, hook: Hook | None = None) -> Delivery:
    """Send ``message`` unless the sent record says it went out; raise EmailError otherwise."""
    use_brevo = settings.brevo_api_key is not None
    claim = records.claim(job_id, window=records_window(use_brevo))
    if claim.status == "sent":
        assert claim.record is not None
        logger.info("Email of job %s was sent before; not sending again", job_id)
        return Delivery.from_record(claim.record)
    if claim.status == "busy":
        error = EmailRetryable(
            f"another attempt is sending this email (its lease ends in {claim.wait_seconds:.0f} s)"
        )
        error.retry_after = claim.wait_seconds + 0.5
        raise error
    if claim.status == "uncertain":
        raise EmailUncertain(
            "an earlier attempt may have sent this email and its idempotency key has expired; "
            "not sending it again (check the Brevo logs for this recipient)"
        )
    try:
        delivery = _send(settings, job_id, idempotency_key, message, file_name)
    except EmailRetryable as exc:
        records.release(job_id, claim.owner, maybe_sent=exc.maybe_sent)
        raise
    except EmailRejected:
        records.release(job_id, claim.owner, maybe_sent=False)
        raise
    except BaseException:
        records.release(job_id, claim.owner, maybe_sent=True)
        raise
    if hook is not None:
        hook("sent")
    records.mark_sent(job_id, via=delivery.via, message_id=delivery.message_id,
                      outbox_path=delivery.outbox_path, note="duplicate" if delivery.earlier else "")
    if hook is not None:
        hook("recorded")
    return delivery


def records_window(use_brevo: bool) -> float | None:
    """Re-sending is safe within Brevo's idempotency window; always for the (idempotent) outbox."""
    return IDEMPOTENCY_WINDOW if use_brevo else None


def _send(settings: Settings, job_id: str, idempotency_key: str, message: RenderedEmail,
          file_name: str) -> Delivery:
    if settings.brevo_api_key is not None:
        result = BrevoClient(settings).send(message, idempotency_key)
        return Delivery(via="brevo", message_id=result.message_id, earlier=result.duplicate)
    domain = message.sender.email.rpartition("@")[2] or "gabay.invalid"
    mime = to_mime(message, message_id=f"<{idempotency_key}@{domain}>")
    path, created = write_once(settings.outbox_dir, file_name, mime)
    logger.info("Email of job %s %s %s", job_id, "written to" if created else "already in", path)
    return Delivery(via="outbox", outbox_path=str(path), earlier=not created)
