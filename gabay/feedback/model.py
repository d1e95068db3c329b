"""The feedback a student reads besides the score, and the checks a model's answer must pass.

A model's answer is used only after :func:`check_feedback` accepted it (schema, exactly one note
per wrong or open question and no other, lengths, no HTML, no links); an answer that fails is
treated like an unavailable provider. The offline writer builds the same model directly.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from gabay.errors import ProviderUnavailable, describe_validation
from gabay.feedback.scoring import Score
from gabay.feedback.submission import MAX_PROBLEMS

Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=400)]
_MARKUP = re.compile(r"<\s*/?\s*[A-Za-z!?]|&#?[A-Za-z0-9]+;|https?://|www\.", re.IGNORECASE)


class QuestionNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question_id: str
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=800)]


class Feedback(BaseModel):
    """What the student reads besides the score: written by a model or by the offline path."""

    model_config = ConfigDict(extra="forbid")

    summary: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=800)]
    strengths: list[Line] = Field(default_factory=list, max_length=5)
    notes: list[QuestionNote] = Field(default_factory=list)
    next_steps: list[Line] = Field(min_length=1, max_length=5)

    def note_for(self, question_id: str) -> str | None:
        return next((n.note for n in self.notes if n.question_id == question_id), None)


def check_feedback(data: object, score: Score) -> Feedback:
    """Accept a model's answer only if it fits; raise ProviderUnavailable saying why not."""
    try:
        feedback = Feedback.model_validate(data)
    except ValidationError as exc:
        problems = describe_validation(exc, subject="submission", limit=MAX_PROBLEMS)
        raise ProviderUnavailable("feedback does not match the schema: " + problems) from None
    ids = [n.question_id for n in feedback.notes]
    expected = score.noted_ids
    if sorted(ids) != sorted(expected):
        raise ProviderUnavailable(f"feedback notes are for {ids}, expected one for each of {expected}")
    texts = [feedback.summary, *feedback.strengths, *feedback.next_steps, *(n.note for n in feedback.notes)]
    if any(_MARKUP.search(text) for text in texts):
        raise ProviderUnavailable("feedback contains HTML, an entity or a link")
    order = {qid: i for i, qid in enumerate(expected)}
    return feedback.model_copy(update={"notes": sorted(feedback.notes, key=lambda n: order[n.question_id])})
