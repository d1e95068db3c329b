"""The offline provider: real questions from the passages, extractive and deterministic.

Used when no LLM key is configured. Every question comes from sentences of a passage (its
``evidence``) and aims at a Bloom level (:func:`gabay.questions.bloom.plan`):

- remember: multiple choice blanks a key term and offers distractors of the same kind drawn from
  the document; true/false states the sentence as it is, or with one term swapped for another of
  the same kind that fits the same slot; short answer asks for a defined term or fills a blank;
- understand: which description fits a defined term, or "Which statement about X is true?" (one
  sentence of the text, two or three with a term swapped) - see :mod:`gabay.questions.offline.levels`;
- analyse: what a cause leads to (or what caused an effect), from the text's causal sentences;
  which of its dated events came first (or last).

Difficulty changes the distractors (easy: the least related terms of the same kind, hard: the
terms used in the closest contexts, see :mod:`gabay.questions.offline.closeness`) and, without a
requested mix, the levels asked. Every draft passes the item-writing-flaw rules
(:mod:`gabay.questions.flaws`) or is not offered. Same input, same output: choices are ordered by
content hashes, never by chance.
"""

from __future__ import annotations

import re
from collections import Counter

from gabay.questions.bloom import DIFFICULTY_LEVELS, plan
from gabay.questions.flaws import FlawContext, find_flaws
from gabay.questions.models import BloomLevel, Draft, Passage, QuestionTask, normalize
from gabay.questions.offline.closeness import Contexts
from gabay.questions.offline.levels import MAKERS, Maker
from gabay.questions.offline.terms import key_terms, sentences
from gabay.questions.offline.writer import BLANK, TF_PREFIX, Writer

__all__ = ["BLANK", "TF_PREFIX", "generate_drafts"]
_PRONOUN_START = re.compile(r"^(it|its|he|she|his|her|they|their|these|this|those)\b", re.IGNORECASE)


def generate_drafts(task: QuestionTask, wanted: int) -> list[Draft]:
    """Up to ``wanted`` drafts, cycling through the requested types, aiming at the planned levels."""
    writer = _writer(task)
    used = {normalize(q.evidence) for q in task.accepted}
    slots = _ordered_sentences(task)
    levels = plan(wanted, task.bloom_mix, task.difficulty)
    cycle = DIFFICULTY_LEVELS[task.difficulty]
    drafts: list[Draft] = []
    exhausted: set[tuple[str, str]] = set()
    types = task.question_types
    per_type: Counter[str] = Counter()
    for position in range(wanted * 3):
        if len(drafts) >= wanted:
            break
        rotated = [types[(position + i) % len(types)] for i in range(len(types))]
        if task.bloom_mix:  # the requested level first, in whichever type can ask it
            choices = [(lv, t) for lv in _fallbacks(levels[len(drafts)]) for t in rotated]
        else:  # the type's turn, at the difficulty's level for its n-th question
            level = cycle[per_type[rotated[0]] % len(cycle)]
            choices = [(lv, rotated[0]) for lv in _fallbacks(level)]
        draft = None
        for tried, qtype in choices:
            if (qtype, tried) in exhausted:
                continue
            draft = _first_fitting(writer, MAKERS[tried][qtype], slots, used, len(drafts))
            if draft is not None:
                break
            exhausted.add((qtype, tried))
        if draft is None:
            if all((t, lv) in exhausted for t in types for lv in _fallbacks("analyse")):
                break
            continue
        per_type[draft.type] += 1
        used.add(normalize(draft.evidence))
        writer.asked.add(draft.question)
        drafts.append(draft)
    return drafts


def _writer(task: QuestionTask) -> Writer:
    texts = [p.text for p in task.passages]
    terms = key_terms(texts)
    titles = [task.title, *sorted({p.headings[0] for p in task.passages if p.headings})]
    return Writer(task, terms, Contexts(texts, terms), FlawContext(titles=titles, passages=texts),
                  asked={q.question for q in task.accepted})


def _fallbacks(level: BloomLevel) -> list[BloomLevel]:
    """The level asked for, then the ones below it the offline writer can write."""
    order: list[BloomLevel] = ["analyse", "understand", "remember"]
    if level not in order:
        level = "analyse" if level in ("apply", "evaluate", "create") else "remember"
    return order[order.index(level):]


def _first_fitting(writer: Writer, maker: Maker | None, slots: list[tuple[Passage, str]],
                   used: set[str], index: int) -> Draft | None:
    """The first draft ``maker`` writes from an unused sentence that the flaw rules pass."""
    if maker is None:
        return None
    for passage, sentence in slots:
        if normalize(sentence) in used:
            continue
        draft = maker(writer, passage, sentence, index)
        if draft is not None and not find_flaws(draft, writer.flaw_context):
            return draft
    return None


def _ordered_sentences(task: QuestionTask) -> list[tuple[Passage, str]]:
    """Sentences round-robin across passages; short ones first for easy, long ones for hard.

    Sentences that open with a pronoun ("It began in 1896") are left out: out of their paragraph
    they do not say what they are about.
    """
    per_passage = [[(p, s) for s in sentences(p.text) if not _PRONOUN_START.match(s)] for p in task.passages]
    if task.difficulty != "medium":
        for group in per_passage:
            group.sort(key=lambda ps: len(ps[1]), reverse=task.difficulty == "hard")
    ordered = []
    for index in range(max((len(g) for g in per_passage), default=0)):
        ordered += [group[index] for group in per_passage if index < len(group)]
    return ordered


