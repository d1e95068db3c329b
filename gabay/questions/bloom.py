"""Bloom's level of a question, and the per-level counts a requested mix asks for.

The tagger reads the stem's cue words (the verbs and question frames of the revised taxonomy):
"what effect", "why", "compare" are analyse; "predict", "calculate", "which example" are apply;
"which statement is true", "explain", "describe" are understand; recall frames ("fill in the
blank", "what is X called", "true or false") are remember. A level the writer gave
(``Draft.bloom_level``) is kept when the stem does not contradict it by being a plain recall item.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from gabay.questions.models import BLOOM_LEVELS, BloomLevel, Difficulty, QuestionType

_CUES: list[tuple[BloomLevel, re.Pattern[str]]] = [
    ("create", re.compile(r"\b(design|propose|compose|invent|write a plan|formulate)\b", re.I)),
    ("evaluate", re.compile(r"\b(evaluate|justify|judge|which is the best|assess|critique|defend)\b", re.I)),
    ("analyse", re.compile(r"\b(why|compare|contrast|distinguish|what (?:is the )?(?:effect|cause|result)s?"
                           r"|effect of|cause of|relationship|happened (?:first|last)|came (?:first|last)"
                           r"|in what order"
                           r"|what (?:can|does) .{1,80} lead to"
                           r"|what happens (?:to|when)|infer|analy[sz]e)\b", re.I)),
    ("apply", re.compile(r"\b(predict|calculate|compute|solve|apply|use .{1,40} to|which example"
                         r"|what would happen|how would you|suppose|imagine)\b", re.I)),
    ("understand", re.compile(r"\b(explain|describe|summari[sz]e|interpret|paraphrase|classify"
                              r"|which (?:statement|sentence|of these statements)|what does .{1,60} mean"
                              r"|in your own words|best describes|main idea)\b", re.I)),
]

#: The levels the offline writer aims at for each difficulty, in the order it tries them.
DIFFICULTY_LEVELS: dict[Difficulty, list[BloomLevel]] = {
    "easy": ["remember"],
    "medium": ["remember", "understand", "remember"],
    "hard": ["analyse", "understand", "remember"],
}


def tag_level(question: str, qtype: QuestionType, declared: BloomLevel | None = None) -> BloomLevel:
    """The level the stem asks for (``declared`` when the stem has no cue of its own)."""
    found = [(match.start(), -BLOOM_LEVELS.index(level), level) for level, cue in _CUES
             if (match := cue.search(question))]
    if found:
        return min(found)[2]  # the first cue of the stem ("Explain why ..." is understand)
    if declared is not None and qtype == "short_answer":
        return declared
    return "remember" if declared is None or qtype == "true_false" else declared


def targets(mix: dict[BloomLevel, float], count: int) -> dict[BloomLevel, int]:
    """Questions per level for ``count`` questions: shares rounded by largest remainder."""
    exact = {level: share * count for level, share in mix.items()}
    floors = {level: math.floor(value) for level, value in exact.items()}
    left = count - sum(floors.values())
    by_remainder = sorted(exact, key=lambda lv: (-(exact[lv] - floors[lv]), BLOOM_LEVELS.index(lv)))
    for level in by_remainder[:left]:
        floors[level] += 1
    return {level: n for level, n in floors.items() if n}


def plan(count: int, mix: dict[BloomLevel, float] | None, difficulty: Difficulty) -> list[BloomLevel]:
    """The level to aim at for each of ``count`` drafts: the mix, else the difficulty's levels."""
    if mix:
        wanted = targets(mix, count)
        order = [lv for lv in BLOOM_LEVELS if lv in wanted]
        out: list[BloomLevel] = []
        while len(out) < count:
            for level in order:
                if Counter(out)[level] < wanted[level] and len(out) < count:
                    out.append(level)
            if all(Counter(out)[lv] >= wanted[lv] for lv in order):
                break
        out += [order[0]] * (count - len(out))
        # the higher levels first: their sentences are rarer, recall can use any sentence
        return sorted(out, key=lambda lv: -BLOOM_LEVELS.index(lv))
    cycle = DIFFICULTY_LEVELS[difficulty]
    return [cycle[i % len(cycle)] for i in range(count)]


def achieved(levels: list[BloomLevel]) -> dict[BloomLevel, int]:
    counts = Counter(levels)
    return {level: counts[level] for level in BLOOM_LEVELS if counts[level]}


def within_one(requested: dict[BloomLevel, int], got: dict[BloomLevel, int]) -> bool:
    """Every level within one question of what was asked for (the quality gate's Bloom goal)."""
    return all(abs(requested.get(lv, 0) - got.get(lv, 0)) <= 1 for lv in BLOOM_LEVELS)
