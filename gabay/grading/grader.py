"""Grading one response against an answer key: every item by its rule, then the totals.

Order of decisions for an item: a teacher's ``overrides`` win; an unanswered item gets 0 (never
sent to a model); choice, true/false, multi-select and numeric items follow their rule
(:mod:`gabay.grading.rules`); a short answer that matches an accepted answer (normalised text) gets
full points, else goes to the LLM grader when the item has a rubric and one is given, else is
wrong or waits for review (the item's ``unmatched``); an essay waits for the teacher. An item left
waiting takes the points the submission carries for it, if any (the teacher has marked it): those
count as the teacher's. Points carried for items the key can grade are ignored: the key decides.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from gabay.errors import InvalidInput
from gabay.grading.contract import SubmissionLike
from gabay.grading.grade import Grade, GradedItem, assemble
from gabay.grading.key import (
    AnswerKey,
    EssayItem,
    KeyItem,
    MultipleChoiceItem,
    MultiSelectItem,
    NumericItem,
    ShortAnswerItem,
    TrueFalseItem,
)
from gabay.grading.llm import LLMGrader, LLMVerdict, Rubric
from gabay.grading.normalize import normalize_text
from gabay.grading.response import AnswerValue, Response, response_from_submission
from gabay.grading.rules import (
    as_text,
    grade_multi_select,
    grade_multiple_choice,
    grade_numeric,
    grade_true_false,
    is_blank,
    scored,
)


def grade_response(key: AnswerKey, response: Response, *, llm: LLMGrader | None = None,
                   overrides: Mapping[str, float] | None = None, version: int = 1,
                   reuse: Mapping[str, GradedItem] | None = None) -> Grade:
    """The grade of ``response``; ``version`` is the grade's number (see ``regrade``).

    ``overrides``: points a teacher set per question id (any item type). ``reuse``: earlier
    LLM-graded items, taken as they are when neither the key item nor the answer changed (a
    re-grade pays no second model call and a model's mood does not make a new version).
    InvalidInput when the response belongs to another exam or points exceed an item's maximum.
    """
    if response.exam_id != key.exam_id:
        raise InvalidInput(f"response {response.response_id!r} is for exam {response.exam_id!r}, "
                           f"the answer key for {key.exam_id!r}")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {i.question_id for i in key.items})
    if unknown:
        raise InvalidInput(f"overrides name questions the key does not have: {', '.join(unknown)}")
    items = []
    for item in key.items:
        value = response.answers.get(item.question_id)
        graded = _graded(key, item, value, response, llm, overrides, (reuse or {}).get(item.question_id))
        items.append(graded.model_copy(update={"key_digest": item.digest(),
                                               "answer_digest": answer_digest(value)}))
    extra = set(response.answers) - {i.question_id for i in key.items}
    return assemble(key, response.response_id, items, version=version, extra_answers=sorted(extra))


def grade_submission(key: AnswerKey, submission: SubmissionLike, *, llm: LLMGrader | None = None,
                     overrides: Mapping[str, float] | None = None) -> Grade:
    """The first grade of a feedback-contract submission (points in it are optional)."""
    return grade_response(key, response_from_submission(submission), llm=llm, overrides=overrides)


def answer_digest(value: AnswerValue) -> str:
    """A short digest of an answer: tells an unchanged answer without keeping its text."""
    return hashlib.sha256(json.dumps(value, ensure_ascii=False).encode()).hexdigest()[:16]


def _graded(key: AnswerKey, item: KeyItem, value: AnswerValue, response: Response,
            llm: LLMGrader | None, overrides: Mapping[str, float],
            earlier: GradedItem | None) -> GradedItem:
    if item.question_id in overrides:
        return _teacher(item, overrides[item.question_id], answered=not is_blank(value))
    if is_blank(value):
        return scored(item, 0.0, answered=False, selected=[] if item.type in _CHOICE else None)
    graded = _by_rule(key, item, value, llm, earlier)
    carried = response.carried_points.get(item.question_id)
    if graded.status == "needs_review" and carried is not None:
        return _teacher(item, carried, answered=True)
    return graded


_CHOICE = frozenset({"multiple_choice", "true_false", "multi_select"})


def _by_rule(key: AnswerKey, item: KeyItem, value: AnswerValue, llm: LLMGrader | None,
             earlier: GradedItem | None) -> GradedItem:
    if isinstance(item, MultipleChoiceItem):
        return grade_multiple_choice(item, value)
    if isinstance(item, TrueFalseItem):
        return grade_true_false(item, value)
    if isinstance(item, MultiSelectItem):
        return grade_multi_select(item, value)
    if isinstance(item, NumericItem):
        return grade_numeric(item, value)
    if isinstance(item, ShortAnswerItem):
        return _short_answer(key, item, as_text(value), llm, earlier, answer_digest(value))
    return _review(item, "an essay is graded by the teacher")


def _short_answer(key: AnswerKey, item: ShortAnswerItem, text: str, llm: LLMGrader | None,
                  earlier: GradedItem | None, digest: str) -> GradedItem:
    if normalize_text(text) in {normalize_text(a) for a in item.accepted if normalize_text(a)}:
        return scored(item, 1.0)
    if item.rubric and llm is not None:
        verdict = _earlier_verdict(item, earlier, digest)
        if verdict is None:
            rubric = Rubric(question_id=item.question_id, question=item.question,
                            criteria=item.rubric, max_points=item.max_points,
                            reference_answers=list(item.accepted))
            verdict = llm.grade(rubric, text)
        return _by_verdict(key, item, verdict.clamped(item.max_points))
    if item.unmatched == "review":
        return _review(item, "no accepted answer matches")
    return scored(item, 0.0)


def _earlier_verdict(item: ShortAnswerItem, earlier: GradedItem | None, digest: str) -> LLMVerdict | None:
    """The model's verdict of an earlier grade, when neither the item nor the answer changed."""
    if earlier is None or earlier.confidence is None or earlier.rationale is None:
        return None
    if earlier.key_digest != item.digest() or earlier.answer_digest != digest:
        return None
    points = earlier.points if earlier.points is not None else earlier.suggested_points
    return LLMVerdict(points or 0.0, earlier.confidence, earlier.rationale)


def _by_verdict(key: AnswerKey, item: ShortAnswerItem, verdict: LLMVerdict) -> GradedItem:
    """The model's points count when its confidence reaches the key's review threshold."""
    points = round(verdict.points, 6)
    if verdict.confidence >= key.review_threshold:
        return GradedItem(question_id=item.question_id, type=item.type, max_points=item.max_points,
                          points=points, status="graded", source="llm", answered=True,
                          confidence=verdict.confidence, rationale=verdict.rationale)
    reason = (f"the grader's confidence {verdict.confidence:g} is under the review threshold "
              f"{key.review_threshold:g}")
    return _review(item, reason).model_copy(update={
        "suggested_points": points, "confidence": verdict.confidence, "rationale": verdict.rationale})


def _review(item: ShortAnswerItem | EssayItem, reason: str) -> GradedItem:
    return GradedItem(question_id=item.question_id, type=item.type, max_points=item.max_points,
                      points=None, status="needs_review", source="none", answered=True,
                      review_reason=reason)


def _teacher(item: KeyItem, points: float, *, answered: bool) -> GradedItem:
    if not 0 <= points <= item.max_points:
        raise InvalidInput(f"{item.question_id}: the teacher's points ({points:g}) are outside "
                           f"0-{item.max_points:g}")
    return GradedItem(question_id=item.question_id, type=item.type, max_points=item.max_points,
                      points=float(points), status="graded", source="teacher", answered=answered)
