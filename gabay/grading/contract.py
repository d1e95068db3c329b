"""The shape of a submission that grading reads, as protocols: grading sits below ``gabay.feedback``.

``gabay.feedback.submission.Submission`` satisfies these protocols; grading reads only these
attributes and never imports the feedback package (imports point one way, see README "Layout").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class FormLike(Protocol):
    @property
    def id(self) -> str: ...


class AnswerLike(Protocol):
    """One answer of the submission contract (``answers[i]``)."""

    @property
    def question_id(self) -> str: ...
    @property
    def question(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def choices(self) -> Sequence[str] | None: ...
    @property
    def answer(self) -> str | None: ...
    @property
    def correct_answer(self) -> str | None: ...
    @property
    def points(self) -> float | None: ...
    @property
    def max_points(self) -> float: ...


class SubmissionLike(Protocol):
    """A submission as validated by ``gabay.feedback.submission.parse_submission``."""

    @property
    def response_id(self) -> str: ...
    @property
    def form(self) -> FormLike: ...
    @property
    def answers(self) -> Sequence[AnswerLike]: ...
