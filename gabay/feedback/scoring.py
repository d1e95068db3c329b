"""The facts of a submission, computed by code: never asked of a language model.

Each answer is ``right`` or ``wrong`` (it has an answer key; answers are compared ignoring case,
accents of spacing and surrounding punctuation) or ``open`` (no key, such as an essay: a teacher
grades it). Points are the grader's ``points`` when the submission carries them, otherwise the
full ``max_points`` for a right answer and 0 for a wrong one. An open answer without points is
*pending*: its points are not in the score yet and are reported separately.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from pydantic import BaseModel

from gabay.feedback.submission import Answer, Submission


class Outcome(StrEnum):
    RIGHT = "right"
    WRONG = "wrong"
    OPEN = "open"


class QuestionFact(BaseModel):
    """What code knows about one answer."""

    question_id: str
    number: int
    question: str
    answer: str
    correct_answer: str | None
    outcome: Outcome
    points: float | None
    max_points: float

    @property
    def needs_note(self) -> bool:
        """Wrong and open answers get a personal note in the feedback."""
        return self.outcome is not Outcome.RIGHT


class Score(BaseModel):
    """The score of a submission and the facts behind it."""

    facts: list[QuestionFact]
    earned: float
    possible: float
    pending_points: float
    pending_questions: int

    @property
    def percent(self) -> int | None:
        return round(100 * self.earned / self.possible) if self.possible else None

    @property
    def right(self) -> list[QuestionFact]:
        return [f for f in self.facts if f.outcome is Outcome.RIGHT]

    @property
    def wrong(self) -> list[QuestionFact]:
        return [f for f in self.facts if f.outcome is Outcome.WRONG]

    @property
    def open(self) -> list[QuestionFact]:
        return [f for f in self.facts if f.outcome is Outcome.OPEN]

    @property
    def noted_ids(self) -> list[str]:
        """Question ids that must get exactly one note each (wrong and open answers)."""
        return [f.question_id for f in self.facts if f.needs_note]

    @property
    def label(self) -> str:
        """``3 / 5 (60%)``: the same text in the subject, the email and the CLI."""
        text = f"{fmt_points(self.earned)} / {fmt_points(self.possible)}"
        return text + (f" ({self.percent}%)" if self.percent is not None else "")


def normalize(text: str | None) -> str:
    """Compare answers the way a teacher would: case, accents and spacing do not matter."""
    folded = unicodedata.normalize("NFKD", text or "").casefold()
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", folded).strip(" .!?;:,'\"")


def fmt_points(value: float) -> str:
    """``5`` rather than ``5.0``; ``1.5`` stays."""
    return f"{value:g}"


def _fact(number: int, answer: Answer) -> QuestionFact:
    given = answer.answer or ""
    if answer.is_open:
        outcome, points = Outcome.OPEN, answer.points
    else:
        right = normalize(given) == normalize(answer.correct_answer) and bool(normalize(given))
        outcome = Outcome.RIGHT if right else Outcome.WRONG
        points = answer.points if answer.points is not None else (answer.max_points if right else 0.0)
    return QuestionFact(
        question_id=answer.question_id, number=number, question=answer.question, answer=given,
        correct_answer=None if answer.is_open else answer.correct_answer, outcome=outcome,
        points=points, max_points=answer.max_points,
    )


def score(submission: Submission) -> Score:
    """The facts and the score of ``submission``."""
    facts = [_fact(n, a) for n, a in enumerate(submission.answers, start=1)]
    graded = [f for f in facts if f.points is not None]
    pending = [f for f in facts if f.points is None]
    return Score(
        facts=facts,
        earned=sum(f.points or 0.0 for f in graded),
        possible=sum(f.max_points for f in graded),
        pending_points=sum(f.max_points for f in pending),
        pending_questions=len(pending),
    )
