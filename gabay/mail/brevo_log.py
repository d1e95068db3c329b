"""Brevo's list of sent transactional emails, asked before re-sending an email that may be out.

When an attempt may have sent an email (a timeout, a 5xx, a connection dropped after the request
was written, a crash), the idempotency key alone is not enough: a Brevo that does not de-duplicate
would deliver it twice, and after 30 minutes no Brevo remembers the key. So before sending it
again, :func:`gabay.mail.delivery.deliver_once` asks this module whether Brevo has it.

What we rely on, from Brevo's API reference and guides:

- ``GET /v3/smtp/emails`` ("Get the list of transactional emails on the basis of allowed
  filters", https://developers.brevo.com/reference/get-transac-emails-list): one of ``email``,
  ``templateId`` or ``messageId`` is mandatory; ``startDate``/``endDate`` (YYYY-MM-DD, at most one
  month apart) are optional and without them the list covers the past 30 days; ``sort``
  (``desc`` by default), ``limit`` (500 by default), ``offset``. The answer is
  ``{"count": N, "transactionalEmails": [...]}``, both documented as nullable. An item has
  ``email``, ``subject``, ``templateId``, ``messageId``, ``uuid``, ``date``, ``from`` and ``tags``
  (a list of strings; Brevo added ``from`` and ``tags`` in 2020 and sends them only when the email
  had them: https://developers.brevo.com/changelog/2020/5/12).
- Rate limits (https://developers.brevo.com/docs/api-limits): ``GET /v3/smtp/emails`` allows
  7,200 requests per hour and 2 per second; a 429 carries ``x-sib-ratelimit-reset``, the seconds
  until the window resets (https://developers.brevo.com/docs/limit-headers).
- The unaggregated events report ``GET /v3/smtp/statistics/events``
  (https://developers.brevo.com/reference/get-email-event-report: ``email``, ``tags`` as a
  "serialized and urlencoded array", ``messageId``, ``event`` such as ``requests`` or
  ``delivered``, ``days`` or ``startDate``/``endDate`` up to 90 days, ``limit`` 2500, ``offset``;
  answer ``{"events": [{"email", "date", "subject", "messageId", "event", "tag", "from", ...}]}``)
  is not used: each event carries a single ``tag`` string whose form for an email with several tags
  is not documented, the serialization of its ``tags`` filter is ambiguous (a wrong guess would
  filter our email out and look like "not sent"), and it is missing from the current rate-limit
  table (the former one gave it 300 requests per hour:
  https://developers.brevo.com/docs/api-limits-deprecated).
- Brevo documents no delay between accepting an email and listing it, hence the settle delay
  ``BREVO_LOG_SETTLE_SECONDS`` (120 s by default) during which "not listed" proves nothing.
- Logs are kept indefinitely unless the account sets a retention period; accounts past 10 million
  events lose events older than 24 months; an account can delete logs
  (https://help.brevo.com/hc/en-us/articles/360021533839).

How we search: the recipient's address is the server-side filter (a plain string, the one
documented mandatory filter), no dates (the default 30 days, so the account's time zone cannot cut
the last day off), newest first, page by page. Our email is the one whose ``tags`` hold
:func:`gabay.mail.brevo.email_tag` of its idempotency key, matched here rather than by Brevo.

Every doubt fails closed: a connection error, a timeout, any status but 200, a 429, or an answer
that is not the documented JSON raises :class:`EmailLogUnavailable` (retry later, send nothing).
An earlier attempt older than the list covers, or more emails to the recipient than
``MAX_PAGES`` pages, raises :class:`EmailUncertain`: a person decides.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import requests

from gabay.errors import ConfigError, EmailLogUnavailable, EmailUncertain
from gabay.mail.brevo import email_tag, redact, reset_seconds
from gabay.mail.render import RenderedEmail
from gabay.settings import Settings

logger = logging.getLogger(__name__)

#: Emails per request: Brevo's documented default.
PAGE_SIZE = 500
#: Pages read for one recipient before giving the decision to a person.
MAX_PAGES = 4
#: Without dates the list covers the past 30 days; one day is left for the account's time zone.
SEARCHABLE_AGE = 29 * 24 * 3600.0


@dataclass(frozen=True)
class LoggedEmail:
    """An email Brevo lists, i.e. accepted (whatever became of it afterwards)."""

    message_id: str | None
    uuid: str = ""
    date: str = ""


class BrevoLog:
    """Finds one email in Brevo's list by its tag; the API key is only ever in the ``api-key`` header."""

    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        if settings.brevo_api_key is None:
            raise ConfigError("BREVO_API_KEY is not set")
        self._key = settings.brevo_api_key.get_secret_value()
        self.url = settings.brevo_base_url.rstrip("/") + "/smtp/emails"
        self.timeout = settings.brevo_timeout
        self.settle_seconds = settings.brevo_log_settle_seconds
        self.session = session or requests.Session()

    def find(self, message: RenderedEmail, idempotency_key: str, since: float) -> LoggedEmail | None:
        """The email of ``idempotency_key`` if Brevo lists it, None if not; raise when unknowable.

        ``since`` is when the first attempt that may have sent it started (epoch seconds).
        """
        age = time.time() - since
        if age > SEARCHABLE_AGE:
            raise EmailUncertain(
                f"an earlier attempt may have sent this email {age / 86400:.0f} days ago, beyond the "
                "30 days Brevo's email list covers; not sending it again (check Brevo's "
                "transactional logs for the recipient, then requeue only if it was not sent)")
        tag = email_tag(idempotency_key)
        for page in range(MAX_PAGES):
            emails, total = self._page(message.to.email, offset=page * PAGE_SIZE)
            for item in emails:
                if tag in (item.get("tags") or []):
                    logger.info("Brevo lists the email tagged %s: %s", tag, item.get("messageId"))
                    return _logged(item)
            read = page * PAGE_SIZE + len(emails)
            if len(emails) < PAGE_SIZE or (total is not None and read >= total):
                logger.info("Brevo does not list the email tagged %s (%d emails read)", tag, read)
                return None
        raise EmailUncertain(
            f"the recipient has more than {MAX_PAGES * PAGE_SIZE} emails in Brevo's list of the past "
            "30 days and none is this one; not sending it again (check Brevo's transactional logs)")

    def _page(self, recipient: str, offset: int) -> tuple[list[dict[str, Any]], int | None]:
        params: dict[str, str | int] = {"email": recipient, "sort": "desc", "limit": PAGE_SIZE,
                                        "offset": offset}
        headers = {"api-key": self._key, "accept": "application/json"}
        try:
            response = self.session.get(self.url, params=params, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise EmailLogUnavailable(f"Brevo's email list could not be read ({type(exc).__name__}); "
                                      "not sending again until it can") from None
        if response.status_code != 200:
            raise self._failure(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        return listed(body)

    def _failure(self, response: requests.Response) -> EmailLogUnavailable:
        status = response.status_code
        try:
            answer = response.json()
        except ValueError:
            answer = None
        answer = answer if isinstance(answer, dict) else {}
        code = str(answer.get("code", ""))
        text = redact(str(answer.get("message", "")), self._key)[:300]
        detail = f"HTTP {status}" + (f" {code}" if code else "") + (f": {text}" if text else "")
        retry_after = reset_seconds(response) if status == 429 else None
        return EmailLogUnavailable(f"Brevo's email list could not be read ({detail}); not sending "
                                   "again until it can", retry_after=retry_after)


def listed(body: Any) -> tuple[list[dict[str, Any]], int | None]:
    """The emails and ``count`` of a ``GET /smtp/emails`` answer; EmailLogUnavailable if malformed.

    Both fields are documented as nullable, so a JSON object without them lists nothing; anything
    else that is not the documented shape could hide our email and is refused.
    """
    if not isinstance(body, dict):
        raise EmailLogUnavailable("Brevo's email list answered something other than a JSON object")
    count, emails = body.get("count"), body.get("transactionalEmails")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
        raise EmailLogUnavailable("Brevo's email list answered a count that is not a number")
    if emails is None:
        if count:
            raise EmailLogUnavailable(f"Brevo's email list counted {count} emails but listed none")
        return [], count
    if not isinstance(emails, list) or not all(_well_formed(item) for item in emails):
        raise EmailLogUnavailable("Brevo's email list answered transactionalEmails in an unknown shape")
    return emails, count


def _well_formed(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    tags = item.get("tags") or []
    return isinstance(tags, list) and all(isinstance(tag, str) for tag in tags)


def _logged(item: dict[str, Any]) -> LoggedEmail:
    message_id = item.get("messageId")
    return LoggedEmail(message_id=message_id if isinstance(message_id, str) and message_id else None,
                       uuid=str(item.get("uuid") or ""), date=str(item.get("date") or ""))
