"""Grading a free answer against a rubric by a language model: the interface the grader calls.

An :class:`LLMGrader` turns ``(rubric, answer)`` into ``(points, confidence, rationale)``. The grader
keeps the points only when ``confidence >= AnswerKey.review_threshold``; under it the item waits
for the teacher (status ``needs_review``) with the model's points as a suggestion. Implementations:
:class:`gabay.grading.chain.ChainGrader` (gabay's OpenAI/DeepSeek chain) and
:class:`gabay.grading.offline.KeywordGrader` (deterministic, no model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict


class Rubric(BaseModel):
    """What a grader is told about one question: never the student's name or other answers."""

    model_config = ConfigDict(frozen=True)

    question_id: str
    question: str
    criteria: str
    max_points: float
    reference_answers: list[str]


@dataclass(frozen=True)
class LLMVerdict:
    """``points`` in ``[0, rubric.max_points]``, ``confidence`` in ``[0, 1]``, a short rationale."""

    points: float
    confidence: float
    rationale: str

    def clamped(self, max_points: float) -> LLMVerdict:
        """The verdict with points and confidence forced into their ranges."""
        return LLMVerdict(points=min(max(self.points, 0.0), max_points),
                          confidence=min(max(self.confidence, 0.0), 1.0), rationale=self.rationale)


class LLMGrader(Protocol):
    """Grades one answer against one rubric. Errors (``ProviderError``) propagate to the caller."""

    def grade(self, rubric: Rubric, answer: str) -> LLMVerdict: ...
