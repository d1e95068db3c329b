"""The digest email: ``digest.html`` and ``digest.txt`` filled from :class:`DigestFacts`.

Same Jinja environment and CSS inlining as the feedback email (:mod:`gabay.mail.render`): one
narrow column that reads on a phone, and a plain-text part. Exam titles reach the templates as
variables, shown as text.
"""

from __future__ import annotations

from typing import Any

from gabay.digests.facts import DigestFacts
from gabay.mail.render import Address, RenderedEmail, inline_css, template_environment
from gabay.settings import Settings


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}%"


def subject_for(facts: DigestFacts) -> str:
    """``Your daily digest: Tuesday 1 December 2026``."""
    return f"Your {facts.period.kind} digest: {facts.period.label}"


def digest_context(facts: DigestFacts, teacher: Address) -> dict[str, Any]:
    rate = facts.acceptance_rate
    questions = (f"{facts.questions_accepted} accepted from {facts.question_requests} request"
                 f"{'' if facts.question_requests == 1 else 's'}"
                 + (f", {round(100 * rate)}% of the drafts accepted" if rate is not None else ""))
    return {
        "subject_line": subject_for(facts),
        "greeting": f"Hello {teacher.name}," if teacher.name else "Hello,",
        "heading": f"{facts.period.kind.capitalize()} digest: {facts.period.label} ({facts.period.zone})",
        "submissions": facts.submissions,
        "mean_percent": _percent(facts.mean_percent),
        "exams": [{"title": e.title, "submissions": e.submissions, "mean": _percent(e.mean_percent)}
                  for e in facts.exams],
        "attention": facts.attention,
        "emails_sent": facts.emails_sent,
        "emails_failed": facts.emails_failed,
        "questions_line": questions,
        "footer": f"You receive this {facts.period.kind} digest because you teach on this platform. "
                  "To stop these digests, ask your administrator to turn them off for you.",
    }


def render_digest_email(settings: Settings, facts: DigestFacts, teacher: Address,
                        job_id: str) -> RenderedEmail:
    env = template_environment()
    context = digest_context(facts, teacher)
    return RenderedEmail(
        sender=Address(settings.email_sender, settings.email_sender_name),
        to=teacher,
        subject=subject_for(facts),
        html=inline_css(env.get_template("digest.html").render(context)),
        text=env.get_template("digest.txt").render(context),
        tags=["gabay-digest", f"digest:{facts.period.kind}"],
        headers={"X-Gabay-Digest-Id": job_id},
    )
