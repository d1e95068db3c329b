"""Send a rendered email at most once through a :class:`gabay.mail.mailer.Mailer`.

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
from typing import Any

from gabay.errors import EmailRejected, EmailRetryable, EmailUncertain
from gabay.mail.mailer import Delivery, Mailer
from gabay.mail.render import RenderedEmail
from gabay.mail.sent_records import SentRecords

logger = logging.getLogger(__name__)

#: Test hook: called with ``"sent"`` right after the provider accepted (before the sent record is
#: written), then with ``"recorded"`` after it.
Hook = Callable[[str], None]


def deliver_once(mailer: Mailer, records: SentRecords, job_id: str, idempotency_key: str,
                 message: RenderedEmail, file_name: str, hook: Hook | None = None) -> Delivery:
    """Send ``message`` unless the sent record says it went out; raise EmailError otherwise."""
    claim = records.claim(job_id, window=mailer.resend_window)
    if claim.status == "sent":
        assert claim.record is not None
        logger.info("Email of job %s was sent before; not sending again", job_id)
        return Delivery.from_record(claim.record)
    if claim.status == "busy":
        raise EmailRetryable(
            f"another attempt is sending this email (its lease ends in {claim.wait_seconds:.0f} s)",
            retry_after=claim.wait_seconds + 0.5,
        )
    if claim.status == "uncertain":
        raise EmailUncertain(
            "an earlier attempt may have sent this email and its idempotency key has expired; "
            "not sending it again (check the Brevo logs for this recipient)"
        )
    try:
        delivery = mailer.send(message, idempotency_key, file_name)
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


def describe_delivery(result: dict[str, Any]) -> str:
    """``outbox file /path/x.eml`` or ``Brevo message <id>`` (or accepted on an earlier attempt).

    ``result`` is a feedback job's result (its ``via``, ``outbox_path`` and ``message_id``).
    """
    if result.get("via") == "outbox":
        return f"outbox file {result['outbox_path']}"
    if result.get("message_id"):
        return f"Brevo message {result['message_id']}"
    return "Brevo (accepted on an earlier attempt)"
