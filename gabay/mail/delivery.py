"""Send a rendered email at most once through a :class:`gabay.mail.mailer.Mailer`.

The steps of one attempt, and what a crash between them leaves behind:

1. claim the sent record (:mod:`gabay.mail.sent_records`): ``sent`` ends the attempt, nothing is
   sent; ``busy`` retries after the other attempt's lease;
2. if an earlier attempt may have sent the email, ask the mailer's log (Brevo's list of sent
   emails, :mod:`gabay.mail.brevo_log`) first:
   - listed -> mark the record ``sent`` with the listed message id; nothing is sent;
   - not listed, and the last such attempt ended at least the log's settle delay ago
     (``BREVO_LOG_SETTLE_SECONDS``) -> it did not go out: send again, with the same key;
   - not listed, but more recently -> the log may be late: retry after the rest of the delay,
     sending nothing;
   - the log cannot be read (error, timeout, 5xx, 429, an unexpected answer) -> fail closed:
     :class:`EmailLogUnavailable` (retried), nothing is sent; :class:`EmailUncertain` (final)
     when the log cannot answer at all (see :mod:`gabay.mail.brevo_log`).
   The file outbox has no log: writing its file again is a no-op, so it simply sends.
3. the caller's ``guard`` (does this process still own the job?), then
   :meth:`SentRecords.confirm` (is the claim still ours, its lease still running?): if either
   says no, the claim is released as not sent and nothing is sent;
4. send (Brevo with the submission's idempotency key and the email's tag, or one hard-linked
   ``.eml``);
5. ``mark_sent`` with the message id or the file path, before the job returns.

A crash after 4 and before 5 leaves ``sending`` with a lease; once it expires, the next attempt
finds the email in Brevo's list (or the ``.eml`` in place) and records it as sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from gabay.errors import EmailRejected, EmailRetryable
from gabay.mail.mailer import Delivery, Mailer
from gabay.mail.render import RenderedEmail
from gabay.mail.sent_records import Claim, SentRecords

logger = logging.getLogger(__name__)

#: Test hook: called with ``"sent"`` right after the provider accepted (before the sent record is
#: written), then with ``"recorded"`` after it.
Hook = Callable[[str], None]
#: Called right before the send; raises when this process no longer owns the job.
Guard = Callable[[], None]
#: Seconds before an attempt whose claim was lost tries again (the new owner holds a lease).
LOST_CLAIM_RETRY = 1.0


def deliver_once(mailer: Mailer, records: SentRecords, job_id: str, idempotency_key: str,
                 message: RenderedEmail, file_name: str, hook: Hook | None = None,
                 guard: Guard | None = None) -> Delivery:
    """Send ``message`` unless the sent record or the mailer's log says it went out.

    Raises EmailError subclasses; whatever ``guard`` raises is re-raised after the claim was
    released as not sent.
    """
    claim = records.claim(job_id)
    if claim.status == "sent":
        assert claim.record is not None
        logger.info("Email of job %s was sent before; not sending again", job_id)
        return Delivery.from_record(claim.record)
    if claim.status == "busy":
        raise EmailRetryable(
            f"another attempt is sending this email (its lease ends in {claim.wait_seconds:.0f} s)",
            retry_after=claim.wait_seconds + 0.5, maybe_sent=False,
        )
    earlier = _found_earlier(mailer, records, job_id, idempotency_key, message, claim)
    if earlier is not None:
        return earlier
    _still_ours(records, job_id, claim.owner, guard)
    return _send(mailer, records, job_id, idempotency_key, message, file_name, claim.owner, hook)


def _found_earlier(mailer: Mailer, records: SentRecords, job_id: str, idempotency_key: str,
                   message: RenderedEmail, claim: Claim) -> Delivery | None:
    """The earlier delivery the mailer's log shows, or None when sending (again) is right.

    Raises (after releasing the claim as not sent) when the log cannot say, or may be late.
    """
    log = mailer.log
    if log is None or not claim.maybe_sent_before:
        return None
    try:
        found = log.find(message, idempotency_key, since=claim.uncertain_since)
    except BaseException:
        records.release(job_id, claim.owner, maybe_sent=False)
        raise
    if found is not None:
        logger.info("Email of job %s is in the %s log (%s); not sending it again", job_id, mailer.via,
                    found.message_id)
        record = records.mark_sent(job_id, via=mailer.via, message_id=found.message_id,
                                   note="found in the provider's log")
        return Delivery.from_record(record)
    waited = time.time() - claim.settle_from
    if waited < log.settle_seconds:
        records.release(job_id, claim.owner, maybe_sent=False)
        remaining = log.settle_seconds - waited
        raise EmailRetryable(
            f"an earlier attempt may have sent this email {waited:.0f} s ago and the {mailer.via} log "
            f"does not list it yet; looking again in {remaining:.0f} s before sending",
            retry_after=remaining + 1.0, maybe_sent=False,
        )
    logger.info("Email of job %s is not in the %s log %.0f s after the last attempt that may have "
                "sent it; sending it again with the same idempotency key", job_id, mailer.via, waited)
    return None


def _still_ours(records: SentRecords, job_id: str, owner: str, guard: Guard | None) -> None:
    """Raise unless this process still owns the job (``guard``) and the claim (confirmed, renewed)."""
    if guard is not None:
        try:
            guard()
        except BaseException:
            records.release(job_id, owner, maybe_sent=False)
            raise
    if not records.confirm(job_id, owner):
        records.release(job_id, owner, maybe_sent=False)  # a no-op when another attempt took over
        raise EmailRetryable(
            "this attempt's claim on the email ran out or was taken over before it could send; "
            "not sending", retry_after=LOST_CLAIM_RETRY, maybe_sent=False,
        )


def _send(mailer: Mailer, records: SentRecords, job_id: str, idempotency_key: str,
          message: RenderedEmail, file_name: str, owner: str, hook: Hook | None) -> Delivery:
    try:
        delivery = mailer.send(message, idempotency_key, file_name)
    except EmailRetryable as exc:
        records.release(job_id, owner, maybe_sent=exc.maybe_sent)
        raise
    except EmailRejected:
        records.release(job_id, owner, maybe_sent=False)
        raise
    except BaseException:
        records.release(job_id, owner, maybe_sent=True)
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
