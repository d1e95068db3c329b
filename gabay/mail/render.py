"""Emails in general: addresses, a rendered email, the one Jinja environment, CSS inlining, MIME.

Nothing here knows what an email is about (the feedback email is :mod:`gabay.feedback.email`).
Templates get user text only as variables, never compile it: the environment autoescapes ``.html``
templates (``select_autoescape``), so ``<script>`` or ``{{ 7*7 }}`` in a variable is shown as text.
The CSS is written once in a ``<style>`` block and inlined by premailer, because many mail clients
drop ``<style>``.
"""

from __future__ import annotations

import email.utils
import importlib
import logging
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

#: Brevo accepts names of at most 70 characters.
MAX_DISPLAY_NAME = 70


@dataclass(frozen=True)
class Address:
    email: str
    name: str = ""

    @property
    def display_name(self) -> str:
        return self.name[:MAX_DISPLAY_NAME]

    def formatted(self) -> str:
        """``Name <address>`` for a header, quoted and encoded as needed."""
        return email.utils.formataddr((self.display_name, self.email))


@dataclass(frozen=True)
class Attachment:
    """A file sent with an email (a teacher's PDF report): Brevo's ``attachment``, a MIME part."""

    name: str
    content: bytes
    mime_type: str = "application/pdf"


@dataclass(frozen=True)
class RenderedEmail:
    """A complete email, ready for Brevo or the outbox."""

    sender: Address
    to: Address
    subject: str
    html: str
    text: str
    tags: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    #: Where replies go (Brevo ``replyTo``, MIME ``Reply-To``); None: to the sender.
    reply_to: Address | None = None
    attachments: list[Attachment] = field(default_factory=list)


@lru_cache(maxsize=1)
def template_environment() -> Environment:
    """The one Jinja environment of gabay's emails (``gabay/templates``; autoescape on for ``.html``)."""
    return Environment(
        loader=PackageLoader("gabay", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def inline_css(html: str) -> str:
    """Move the ``<style>`` rules into ``style=`` attributes (kept: the viewport meta)."""
    # premailer (lxml, cssutils) is imported at the first email: an idle worker does not pay it
    premailer = importlib.import_module("premailer")
    inliner = premailer.Premailer(html, keep_style_tags=False, remove_classes=False,
                                  cssutils_logging_level=logging.CRITICAL, allow_network=False)
    return str(inliner.transform(pretty_print=False))


def to_mime(message: RenderedEmail, message_id: str | None = None) -> EmailMessage:
    """A multipart/alternative MIME message (text first, then HTML), as RFC 5322 bytes allow."""
    mime = EmailMessage()
    mime["From"] = message.sender.formatted()
    mime["To"] = message.to.formatted()
    if message.reply_to is not None:
        mime["Reply-To"] = message.reply_to.formatted()
    mime["Subject"] = message.subject
    mime["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    domain = message.sender.email.rpartition("@")[2] or "gabay.invalid"
    mime["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@{domain}>"
    for name, value in message.headers.items():
        mime[name] = value
    mime.set_content(message.text, subtype="plain", charset="utf-8")
    mime.add_alternative(message.html, subtype="html", charset="utf-8")
    for attachment in message.attachments:  # multipart/mixed around the alternatives
        maintype, _, subtype = attachment.mime_type.partition("/")
        mime.add_attachment(attachment.content, maintype=maintype, subtype=subtype,
                            filename=attachment.name)
    return mime
