"""Feedback emails: one Jinja environment, an HTML and a text body, inlined CSS, and MIME.

Everything the student or a model wrote reaches the templates as variables, so it is shown as
text: the HTML template autoescapes (``select_autoescape`` for ``.html``), and no user text is ever
compiled as a template (``{{ 7*7 }}`` in an answer stays ``{{ 7*7 }}``). The CSS is written once in
a ``<style>`` block and inlined by premailer, because many mail clients drop ``<style>``.
"""

from __future__ import annotations

import email.utils
import logging
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import lru_cache
from typing import Any

import premailer
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from gabay.feedback.locales import texts_for
from gabay.feedback.scoring import Outcome, Score, fmt_points
from gabay.feedback.submission import Submission
from gabay.feedback.writer import Feedback
from gabay.settings import Settings

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
class RenderedEmail:
    """A complete email, ready for Brevo or the outbox."""

    sender: Address
    to: Address
    subject: str
    html: str
    text: str
    tags: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=1)
def template_environment() -> Environment:
    """The one Jinja environment of gabay's emails (autoescape on for ``.html``)."""
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
    inliner = premailer.Premailer(html, keep_style_tags=False, remove_classes=False,
                                  cssutils_logging_level=logging.CRITICAL, allow_network=False)
    return str(inliner.transform(pretty_print=False))


def _questions(t: dict[str, str], score: Score, feedback: Feedback) -> list[dict[str, Any]]:
    rows = []
    for fact in score.facts:
        earned = "\u2014" if fact.points is None else fmt_points(fact.points)
        rows.append({
            "heading": t["question"].format(number=fact.number),
            "outcome": fact.outcome.value,
            "outcome_label": t[fact.outcome.value],
            "points_label": f"{earned} / {fmt_points(fact.max_points)}",
            "question": fact.question,
            "answer": fact.answer,
            "correct_answer": fact.correct_answer if fact.outcome is Outcome.WRONG else None,
            "note": feedback.note_for(fact.question_id),
        })
    return rows


def subject_for(submission: Submission, score: Score) -> str:
    """``Your feedback for Photosynthesis Quiz: 3 / 5 (60%)``, in the submission's language."""
    subject = texts_for(submission.language_code)["subject"]
    return subject.format(title=submission.form.title, score=score.label)


def email_context(submission: Submission, score: Score, feedback: Feedback) -> dict[str, Any]:
    """The variables of both templates; fixed wording is formatted here, user text stays data."""
    t = texts_for(submission.language_code)
    form, student = submission.form, submission.student
    t["greeting_line"] = t["greeting"].format(name=student.name)
    t["intro_line"] = t["intro"].format(title=form.title, subject=form.subject)
    t["footer_line"] = t["footer"].format(email=student.email, title=form.title)
    pending = ""
    if score.pending_questions:
        pending = t["pending"].format(points=fmt_points(score.pending_points), count=score.pending_questions)
    return {
        "t": t,
        "language": submission.language_code,
        "subject_line": subject_for(submission, score),
        "score_label": score.label,
        "pending_line": pending,
        "feedback": feedback,
        "questions": _questions(t, score, feedback),
    }


def render_feedback_email(settings: Settings, submission: Submission, score: Score,
                          feedback: Feedback) -> RenderedEmail:
    """The feedback email of ``submission``, addressed to the student."""
    env = template_environment()
    context = email_context(submission, score, feedback)
    html = inline_css(env.get_template("feedback.html").render(context))
    text = env.get_template("feedback.txt").render(context)
    return RenderedEmail(
        sender=Address(settings.email_sender, settings.email_sender_name),
        to=Address(str(submission.student.email), submission.student.name),
        subject=context["subject_line"],
        html=html,
        text=text,
        tags=["gabay-feedback", f"form:{submission.form.id}"[:100]],
        headers={"X-Gabay-Response-Id": submission.response_id},
    )


def to_mime(message: RenderedEmail, message_id: str | None = None) -> EmailMessage:
    """A multipart/alternative MIME message (text first, then HTML), as RFC 5322 bytes allow."""
    mime = EmailMessage()
    mime["From"] = message.sender.formatted()
    mime["To"] = message.to.formatted()
    mime["Subject"] = message.subject
    mime["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    domain = message.sender.email.rpartition("@")[2] or "gabay.invalid"
    mime["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@{domain}>"
    for name, value in message.headers.items():
        mime[name] = value
    mime.set_content(message.text, subtype="plain", charset="utf-8")
    mime.add_alternative(message.html, subtype="html", charset="utf-8")
    return mime
