"""Rules on the stem: a question or a sentence, negatives that are easy to miss."""

from __future__ import annotations

import re

from gabay.questions.flaws.text import BLANK_RE, unquoted
from gabay.questions.models import Draft

_NEGATIVE = re.compile(r"\b(not|except|never|least|cannot|isn't|aren't|doesn't|don't|no longer)\b",
                       re.IGNORECASE)
_EMPHASIS = re.compile(r"\b(NOT|EXCEPT|NEVER|LEAST|CANNOT)\b|\*\w+\*|_\w+_")
TF_PREFIX = re.compile(r"^(true or false|tama o mali)\s*[:?]\s*", re.IGNORECASE)


def statement_of(draft: Draft) -> str:
    """A true/false item's statement, without its ``True or false:`` prefix."""
    return TF_PREFIX.sub("", draft.question.strip())


def unemphasised_negative(draft: Draft) -> str | None:
    """"Which is not ..." written in lower case: students read past the "not"."""
    text = statement_of(draft) if draft.type == "true_false" else unquoted(draft.question)
    for match in _NEGATIVE.finditer(text):
        if not _EMPHASIS.fullmatch(match.group(0)) and not _EMPHASIS.search(
                text[max(0, match.start() - 1):match.end() + 1]):
            return f"the negative {match.group(0)!r} is not emphasised"
    return None


def not_a_question(draft: Draft) -> str | None:
    """The stem must be a question, a sentence with a blank, or (true/false) a full sentence."""
    text = draft.question.strip()
    words = re.findall(r"\w+", text)
    if draft.type == "true_false":
        statement = statement_of(draft)
        short = len(re.findall(r"\w+", statement)) < 4
        if short or not statement[:1].isupper() or statement[-1:] not in ".!":
            return "the true/false statement is not a full sentence"
        if statement.endswith("?"):
            return "a true/false statement written as a question"
        return None
    if len(words) < 3:
        return "the stem is too short to be a question"
    if text.endswith("?") or BLANK_RE.search(text) or unquoted(text).strip().endswith(("?", ":")):
        return None
    return "the stem is neither a question nor a sentence to complete"
