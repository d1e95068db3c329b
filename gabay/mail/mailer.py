"""The Mailer: Brevo when ``BREVO_API_KEY`` is set, else the file outbox, chosen once per process.

:func:`build_mailer` makes the choice from the settings; everything after it (the send, the log
that says whether an uncertain email went out, the name recorded in the sent record) asks the
mailer instead of looking at the settings again. The Brevo mailer keeps one pooled
``requests.Session`` for its lifetime, shared by its sends and its log look-ups, so consecutive
requests reuse their HTTPS connections.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import requests
from requests.adapters import HTTPAdapter

from gabay.mail.brevo import BrevoClient
from gabay.mail.brevo_log import BrevoLog, LoggedEmail
from gabay.mail.outbox import write_once
from gabay.mail.render import RenderedEmail, to_mime
from gabay.settings import Settings

logger = logging.getLogger(__name__)


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


class SentLog(Protocol):
    """A provider's own record of the emails it accepted (see :mod:`gabay.mail.brevo_log`).

    ``settle_seconds``: how long after an attempt the log may still lack the email it sent.
    """

    settle_seconds: float

    def find(self, message: RenderedEmail, idempotency_key: str, since: float) -> LoggedEmail | None:
        """The logged email, None when the log lacks it; raise EmailError when that is unknowable."""


class Mailer(Protocol):
    """Sends one rendered email per call; raises gabay.errors.EmailError subclasses.

    ``via`` is the name recorded with a sent email; ``log`` the provider's log, asked before
    re-sending an email an earlier attempt may have sent (None: re-sending is always safe).
    """

    via: str
    log: SentLog | None

    def send(self, message: RenderedEmail, idempotency_key: str, file_name: str) -> Delivery:
        """Send ``message``; ``idempotency_key`` is the same on every attempt of one email."""


class BrevoMailer:
    """Brevo's API: the idempotency key de-duplicates for 30 minutes, its email list for good."""

    via = "brevo"

    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        session = session or pooled_session(settings.worker_threads)
        self.client = BrevoClient(settings, session)
        self.log: SentLog | None = BrevoLog(settings, session)

    def send(self, message: RenderedEmail, idempotency_key: str, file_name: str) -> Delivery:
        result = self.client.send(message, idempotency_key)
        return Delivery(via=self.via, message_id=result.message_id, earlier=result.duplicate)


class OutboxMailer:
    """One ``.eml`` file per email; writing it again is a no-op, so re-sending is always safe."""

    via = "outbox"
    log: SentLog | None = None

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: RenderedEmail, idempotency_key: str, file_name: str) -> Delivery:
        domain = message.sender.email.rpartition("@")[2] or "gabay.invalid"
        mime = to_mime(message, message_id=f"<{idempotency_key}@{domain}>")
        path, created = write_once(self.directory, file_name, mime)
        logger.info("Email %s %s", "written to" if created else "already in", path)
        return Delivery(via=self.via, outbox_path=str(path), earlier=not created)


def build_mailer(settings: Settings) -> Mailer:
    """Brevo when ``BREVO_API_KEY`` is set, else the outbox in ``EMAIL_OUTBOX_DIR``."""
    if settings.brevo_api_key is not None:
        return BrevoMailer(settings)
    return OutboxMailer(settings.outbox_dir)


def pooled_session(threads: int) -> requests.Session:
    """A session whose pool keeps a connection for each worker thread that may send at once."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_maxsize=max(threads, 10))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
