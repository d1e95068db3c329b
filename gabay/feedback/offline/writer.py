"""Feedback without a language model: kind, specific sentences built from the computed facts.

Deterministic: the same submission always gets the same words, in English or Tagalog (see
:mod:`gabay.feedback.locales`). It names what went right, explains each wrong answer with the answer key,
and says what happens to open answers.
"""

from __future__ import annotations

from gabay.feedback.locales import texts_for
from gabay.feedback.model import Feedback, QuestionNote
from gabay.feedback.scoring import Outcome, QuestionFact, Score
from gabay.feedback.submission import Submission

MAX_QUOTE = 160


def _short(text: str, limit: int = MAX_QUOTE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _summary(t: dict[str, str], submission: Submission, score: Score) -> str:
    graded = len(score.right) + len(score.wrong)
    values = {"name": submission.student.name.split()[0], "title": submission.form.title,
              "right": len(score.right), "graded": graded}
    if graded == 0:
        return t["summary_open"].format(**values)
    share = len(score.right) / graded
    if share == 1:
        key = "summary_full"
    elif share >= 0.75:
        key = "summary_high"
    elif share >= 0.4:
        key = "summary_mid"
    else:
        key = "summary_low"
    return t[key].format(**values)


def _strengths(t: dict[str, str], score: Score) -> list[str]:
    strengths = [t["strength_right"].format(question=_short(f.question, 120)) for f in score.right[:3]]
    if all(f.answer.strip() for f in score.facts):
        strengths.append(t["strength_all_answered"])
    if not score.right:
        strengths.append(t["strength_effort"])
    return strengths[:5]


def _note(t: dict[str, str], fact: QuestionFact, subject: str) -> str:
    if fact.outcome is Outcome.OPEN:
        return t["note_open"].format(subject=subject)
    correct = _short(fact.correct_answer or "")
    if not fact.answer.strip():
        return t["note_blank"].format(correct=correct)
    return t["note_wrong"].format(answer=_short(fact.answer), correct=correct)


def _next_steps(t: dict[str, str], submission: Submission, score: Score) -> list[str]:
    steps = []
    if score.wrong:
        steps.append(t["step_review"].format(numbers=", ".join(str(f.number) for f in score.wrong)))
        steps.append(t["step_reread"].format(subject=submission.form.subject))
    else:
        steps.append(t["step_stretch"].format(title=submission.form.title))
    if score.open:
        steps.append(t["step_open"])
    return steps


def offline_feedback(submission: Submission, score: Score) -> Feedback:
    """Feedback for ``submission`` in its language (English when it has no strings for it)."""
    t = texts_for(submission.language_code)
    notes = [QuestionNote(question_id=f.question_id, note=_note(t, f, submission.form.subject))
             for f in score.facts if f.needs_note]
    return Feedback(summary=_summary(t, submission, score), strengths=_strengths(t, score),
                    notes=notes, next_steps=_next_steps(t, submission, score))
