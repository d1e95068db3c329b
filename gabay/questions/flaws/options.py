"""Rules on the options of a multiple-choice item: cues that give the answer away."""

from __future__ import annotations

import re

from gabay.questions.flaws.text import BLANK_RE, content_words, kind_of, quoted, unquoted
from gabay.questions.models import Draft, normalize

_CATCH_ALL = re.compile(r"\b(all|none|both|neither) of (the )?(above|these|them|those)\b|^(a|b) and (b|c)$")
NEAR_DUPLICATE = 0.75


def _distractors(draft: Draft) -> list[str]:
    key = normalize(draft.answer)
    return [o for o in draft.options if normalize(o) != key]


def longest_answer(draft: Draft) -> str | None:
    """The key is clearly longer than every distractor (test-wise students pick the longest)."""
    wrong = _distractors(draft)
    if draft.type != "multiple_choice" or not wrong:
        return None
    words = len(draft.answer.split())
    longest_words = max(len(o.split()) for o in wrong)
    longest_chars = max(len(o) for o in wrong)
    if words >= longest_words + 2 and len(draft.answer) > 1.5 * longest_chars:
        return "the answer is longer than every distractor"
    return None


def catch_all_option(draft: Draft) -> str | None:
    """"All of the above" / "none of the above" rewards partial knowledge."""
    if draft.type != "multiple_choice":
        return None
    found = [o for o in draft.options if _CATCH_ALL.search(normalize(o))]
    return f"catch-all option {found[0]!r}" if found else None


def overlapping_options(draft: Draft) -> str | None:
    """Two options that are the same, one inside the other, or near-duplicates by their words."""
    if draft.type != "multiple_choice":
        return None
    texts = [normalize(o) for o in draft.options]
    for i, first in enumerate(texts):
        for second in texts[i + 1:]:
            if first == second:
                return f"duplicate options {first!r}"
            if re.search(rf"\b{re.escape(first)}\b", second) or re.search(rf"\b{re.escape(second)}\b", first):
                return f"overlapping options {first!r} and {second!r}"
            a, b = set(first.split()), set(second.split())
            if len(a | b) > 2 and len(a & b) / len(a | b) >= NEAR_DUPLICATE:
                return f"near-duplicate options {first!r} and {second!r}"
    return None


def grammatical_cue(draft: Draft) -> str | None:
    """"... is an _____" with options of which only some fit the article."""
    if draft.type != "multiple_choice":
        return None
    match = re.search(r"\b(a|an)\s+(?:_{3,}|$)", draft.question.strip(' "?:.'), flags=re.IGNORECASE)
    if not match:
        return None
    wants_vowel = match.group(1).casefold() == "an"
    fits = [o for o in draft.options if (o.strip()[:1].casefold() in "aeiou") == wants_vowel]
    if 0 < len(fits) < len(draft.options):
        return f"the article {match.group(1)!r} before the blank fits only some options"
    return None


def answer_repeats_stem(draft: Draft) -> str | None:
    """A word of the key is also in the stem and in no distractor: a clang association that
    points to the key (multiple choice; a short answer has no options to tell apart)."""
    if draft.type != "multiple_choice":
        return None
    stem = BLANK_RE.sub(" ", unquoted(draft.question) + " " + quoted(draft.question))
    shared = content_words(draft.answer) & content_words(stem)
    if not shared:
        return None
    if any(content_words(o) & shared for o in _distractors(draft)):
        return None
    return f"the answer repeats the stem's word {sorted(shared)[0]!r}"


def implausible_distractor(draft: Draft) -> str | None:
    """A distractor of another kind than the key (a year among names, a name among phrases)."""
    if draft.type != "multiple_choice":
        return None
    kind = kind_of(draft.answer)
    odd = [o for o in _distractors(draft) if kind_of(o) != kind]
    return f"distractor {odd[0]!r} is a {kind_of(odd[0])}, the answer a {kind}" if odd else None
