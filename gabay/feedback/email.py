"""The feedback email: the templates ``feedback.html`` and ``feedback.txt`` filled from the facts.

Fixed wording comes from :mod:`gabay.feedback.locales` and is formatted here; everything the
student or a model wrote reaches the templates as variables (see :mod:`gabay.mail.render`), so it
is shown as text.
"""

from __future__ import annotations

from typing import Any

from gabay.feedback.locales import texts_for
from gabay.feedback.model import Feedback
from gabay.feedback.scoring import Outcome, Score, fmt_points
from gabay.feedback.submission import Submission
from gabay.mail.render import Address, RenderedEmail, inline_css, template_environment
from gabay.settings import Settings


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
    teacher = submission.teacher
    footer = t["footer_reply"] if teacher is not None else t["footer"]  # what replying does
    t["footer_line"] = footer.format(email=student.email, title=form.title,
                                     teacher=teacher.name if teacher else "")
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


def reply_to_of(submission: Submission) -> Address | None:
    """The teacher the submission names (a reply reaches them), or None (replies go to the sender)."""
    teacher = submission.teacher
    return Address(str(teacher.email), teacher.name) if teacher is not None else None


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
        reply_to=reply_to_of(submission),
        headers={"X-Gabay-Response-Id": submission.response_id},
    )
