"""The answer key of an exam: one typed, versioned item per question, validated like the contracts.

The platform owns the key and numbers its versions (``version`` 1, 2, ... for one ``exam_id``);
a grade records the key version and digest it was computed with, so a changed key is noticed
and re-grading makes a new grade version (:mod:`gabay.grading.regrade`). JSON types are strict
(``"1"`` is not a number) and unknown fields are refused, as in the question request contract.
A submission that carries its own key (``correct_answer`` per answer, as the samples in
``examples/submissions`` do) gives a key through :func:`key_from_submission`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gabay.errors import InvalidInput, describe_validation
from gabay.grading.contract import AnswerLike, SubmissionLike
from gabay.grading.normalize import normalize_text, parse_bool

MAX_ITEMS = 200
MAX_OPTIONS = 20
MAX_POINTS = 1000.0
MAX_TEXT = 5000
#: Confidence under which an LLM's points wait for a teacher (see :mod:`gabay.grading.llm`).
DEFAULT_REVIEW_THRESHOLD = 0.7

Ident = Annotated[str, Field(min_length=1, max_length=200)]
Option = Annotated[str, Field(min_length=1, max_length=500)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, str_strip_whitespace=True)


class BaseItem(_Strict):
    question_id: Ident
    max_points: float = Field(gt=0, le=MAX_POINTS)
    #: The question's text: only used in an LLM's rubric prompt.
    question: str = Field("", max_length=2000)

    def digest(self) -> str:
        """A short digest of this item's content: tells an unchanged item on re-grading."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class _ChoiceItem(BaseItem):
    options: list[Option] = Field(min_length=2, max_length=MAX_OPTIONS)

    @field_validator("options")
    @classmethod
    def _distinct_options(cls, options: list[str]) -> list[str]:
        names = [normalize_text(o) for o in options]
        if len(set(names)) != len(names):
            raise ValueError("two options read the same once case, accents and punctuation are ignored")
        return options

    def option_named(self, text: str) -> str | None:
        """The option ``text`` names (compared as normalised text), as the key spells it."""
        wanted = normalize_text(text)
        return next((o for o in self.options if normalize_text(o) == wanted), None)

    def _check_in_options(self, values: list[str], field: str) -> None:
        for value in values:
            if self.option_named(value) is None:
                raise ValueError(f"{field} {value!r} is not one of the options")


class MultipleChoiceItem(_ChoiceItem):
    """One option is right; ``also_correct`` lists further accepted options (a key fixed later)."""

    type: Literal["multiple_choice"]
    correct: Option
    also_correct: list[Option] = Field(default_factory=list, max_length=MAX_OPTIONS)

    @model_validator(mode="after")
    def _correct_is_an_option(self) -> MultipleChoiceItem:
        self._check_in_options([self.correct, *self.also_correct], "correct")
        return self


class TrueFalseItem(BaseItem):
    type: Literal["true_false"]
    correct: bool


class MultiSelectItem(_ChoiceItem):
    """Several options are right. ``scoring``: ``partial`` (default) or ``all_or_nothing``."""

    type: Literal["multi_select"]
    correct: list[Option] = Field(min_length=1, max_length=MAX_OPTIONS)
    scoring: Literal["partial", "all_or_nothing"] = "partial"

    @model_validator(mode="after")
    def _correct_are_options(self) -> MultiSelectItem:
        self._check_in_options(self.correct, "correct")
        return self


class NumericItem(BaseItem):
    """Right when ``|answer - value| <= max(abs_tol, rel_tol * |value|)``."""

    type: Literal["numeric"]
    value: float = Field(allow_inf_nan=False)
    abs_tol: float = Field(0.0, ge=0, allow_inf_nan=False)
    rel_tol: float = Field(0.0, ge=0, le=1)


class ShortAnswerItem(BaseItem):
    """Right when the normalised answer equals a normalised ``accepted`` text.

    An answer matching none goes to the LLM grader when the item has a ``rubric`` and a grader is
    given; otherwise it is wrong (``unmatched="wrong"``, the default) or waits for the teacher
    (``unmatched="review"``).
    """

    type: Literal["short_answer"]
    accepted: list[Text] = Field(default_factory=list, max_length=50)
    rubric: Text | None = None
    unmatched: Literal["wrong", "review"] = "wrong"

    @model_validator(mode="after")
    def _gradable(self) -> ShortAnswerItem:
        if not any(normalize_text(a) for a in self.accepted) and not self.rubric:
            raise ValueError("a short answer needs accepted answers or a rubric (else it is an essay)")
        return self


class EssayItem(BaseItem):
    """Graded by the teacher: the grader never gives it points (status ``needs_review``)."""

    type: Literal["essay"]
    rubric: Text | None = None


KeyItem = Annotated[
    MultipleChoiceItem | TrueFalseItem | MultiSelectItem | NumericItem | ShortAnswerItem | EssayItem,
    Field(discriminator="type"),
]
ItemType = Literal["multiple_choice", "true_false", "multi_select", "numeric", "short_answer", "essay"]
CHOICE_TYPES = frozenset({"multiple_choice", "true_false", "multi_select"})


class AnswerKey(_Strict):
    """The key of one exam (``exam_id`` = the submission's ``form.id``) in one version."""

    exam_id: Ident
    version: int = Field(ge=1)
    items: list[KeyItem] = Field(min_length=1, max_length=MAX_ITEMS)
    review_threshold: float = Field(DEFAULT_REVIEW_THRESHOLD, ge=0, le=1)

    @field_validator("items")
    @classmethod
    def _unique_ids(cls, items: list[KeyItem]) -> list[KeyItem]:
        seen: set[str] = set()
        for item in items:
            if item.question_id in seen:
                raise ValueError(f"question_id {item.question_id!r} appears twice")
            seen.add(item.question_id)
        return items

    @property
    def max_points(self) -> float:
        return sum(item.max_points for item in self.items)

    def item(self, question_id: str) -> KeyItem | None:
        return next((i for i in self.items if i.question_id == question_id), None)

    def digest(self) -> str:
        """A digest of the whole key: two keys with one version number but other content differ."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def parse_answer_key(data: Any) -> AnswerKey:
    """Validate ``data`` (a dict); raise InvalidInput naming every problem."""
    if isinstance(data, AnswerKey):
        return data
    if not isinstance(data, dict):
        raise InvalidInput(f"an answer key must be a JSON object, not {type(data).__name__}")
    try:
        return AnswerKey.model_validate_json(json.dumps(data, allow_nan=False))
    except ValidationError as exc:
        raise InvalidInput("invalid answer key: " + describe_validation(exc, subject="answer key",
                                                                        limit=8)) from None
    except ValueError as exc:
        raise InvalidInput(f"the answer key is not plain JSON: {exc}") from None


def key_from_submission(submission: SubmissionLike, version: int = 1) -> AnswerKey:
    """The key a submission carries in its answers' ``correct_answer`` (as the samples do).

    ``multiple_choice`` with choices -> a multiple choice item (the key must be a choice);
    ``true_false`` -> true/false (the key must read as true or false); ``short_answer`` and a
    multiple choice without choices -> a short answer accepting the key; no key (an essay, or
    ``correct_answer`` null) -> an essay item.
    """
    items = [_item_from_answer(answer) for answer in submission.answers]
    return parse_answer_key({"exam_id": submission.form.id, "version": version, "items": items})


def _item_from_answer(answer: AnswerLike) -> dict[str, Any]:
    common: dict[str, Any] = {"question_id": answer.question_id, "max_points": answer.max_points,
                              "question": answer.question}
    key = (answer.correct_answer or "").strip()
    if not key or answer.type == "essay":
        return {**common, "type": "essay"}
    if answer.type == "multiple_choice" and answer.choices:
        return {**common, "type": "multiple_choice", "options": list(answer.choices), "correct": key}
    if answer.type == "true_false":
        value = parse_bool(key)
        if value is None:
            raise InvalidInput(f"answers {answer.question_id}: the true/false key {key!r} reads as "
                               "neither true nor false")
        return {**common, "type": "true_false", "correct": value}
    return {**common, "type": "short_answer", "accepted": [key]}
