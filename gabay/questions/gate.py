"""The quality gate of validation: item-writing flaws (free, in code), then the blind round trip.

It runs after the structural and duplicate checks and before the validator model: a draft with a
flaw the rules find, or whose key a blind answerer does not reach, is rejected with its reasons and
scores (:class:`gabay.questions.models.Quality`); the others go on to the validator with theirs,
which stay with the question in the result and the results store.
"""

from __future__ import annotations

from gabay.questions.bloom import achieved, tag_level, targets
from gabay.questions.checks import flaws_of
from gabay.questions.models import (
    BloomLevel,
    BloomMix,
    Draft,
    Quality,
    Question,
    QuestionTask,
    Rejection,
    RoundTrip,
)
from gabay.questions.round_trip import agrees, answer_offline

ROUND_TRIP_REJECTED = "round trip: a blind answerer did not reach the answer key"


def level_of(draft: Draft) -> Quality:
    return Quality(bloom_level=tag_level(draft.question, draft.type, draft.bloom_level))


def screen_flaws(task: QuestionTask, drafts: list[Draft]) -> tuple[list[Draft], list[Rejection]]:
    """The drafts the flaw rules pass, and the others rejected with every flaw found."""
    passed, rejected = [], []
    for draft in drafts:
        flaws = flaws_of(draft, task)
        if flaws:
            quality = level_of(draft).model_copy(update={"flaws": [str(f) for f in flaws]})
            rejected.append(Rejection(draft_id=draft.id, question=draft.question,
                                      reason=f"item-writing flaw: {flaws[0]}", quality=quality))
        else:
            passed.append(draft)
    return passed, rejected


def offline_answers(task: QuestionTask, drafts: list[Draft]) -> dict[str, str]:
    """Blind answers by term overlap over the task's passages (the answer keys are not used)."""
    blind = [d.model_copy(update={"answer": "", "evidence": ""}) for d in drafts]
    return {d.id: answer_offline(d, task.passages) for d in blind}


def judge_round_trip(drafts: list[Draft], answers: dict[str, str],
                     by: str) -> tuple[list[Draft], list[Rejection], dict[str, Quality]]:
    """Drafts whose blind answer agrees with the key, the others rejected, everyone's scores."""
    passed, rejected, scores = [], [], {}
    for draft in drafts:
        given = answers.get(draft.id, "")
        agreed = agrees(draft, given) if given else False
        trip = RoundTrip(answer=given[:300], agreed=agreed, by=by)
        quality = level_of(draft).model_copy(update={"round_trip": trip})
        scores[draft.id] = quality
        if agreed:
            passed.append(draft)
        else:
            rejected.append(Rejection(draft_id=draft.id, question=draft.question, quality=quality,
                                      reason=ROUND_TRIP_REJECTED))
    return passed, rejected, scores


def bloom_mix(task: QuestionTask, questions: list[Question]) -> BloomMix:
    """The questions per Bloom level, against the request's mix (as counts) when it asked for one."""
    levels: list[BloomLevel] = [q.bloom_level or "remember" for q in questions]
    requested = targets(task.bloom_mix, task.count) if task.bloom_mix else None
    return BloomMix(requested=requested, achieved=achieved(levels))
