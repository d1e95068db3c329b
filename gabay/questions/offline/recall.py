"""Remember-level questions: a blanked key term, a statement as written or with a term swapped, a
defined term asked for."""

from __future__ import annotations

import re

from gabay.questions.models import Draft, Passage
from gabay.questions.offline.writer import BLANK, TF_PREFIX, Writer, as_in, blank, digest, lower_first

__all__ = ["BLANK", "TF_PREFIX", "multiple_choice", "short_answer", "true_false"]

MAX_STATEMENT_WORDS = 25
_NEGATIVE = re.compile(r"\b(not|never|no|cannot|except)\b", re.IGNORECASE)
_CALLED = re.compile(r"^(?P<x>.{8,120}?),? (?P<verb>is|are|was|were) (?:often |also |usually )?"
                     r"(?:called|known as) (?:the )?(?P<y>[^,;()]{2,60}?)\.?$")
_ALSO = re.compile(r"^(?P<x>[^,]{4,80}), (?:also )?(?:called|known as) (?:the )?(?P<y>[^,]{2,60}),")
_IS = re.compile(r"^(?P<x>[A-Z][\w -]{2,40}?) (?P<verb>is|are) (?:simply )?(?P<y>(?:the|a|an) [^,;]{8,140}?)"
                 r"(?:[,;].*)?\.$")


def multiple_choice(writer: Writer, passage: Passage, sentence: str, index: int) -> Draft | None:
    term = writer.key_term(sentence)
    if term is None:
        return None
    wrong = writer.distractors(term, sentence)
    if not wrong:
        return None
    answer = as_in(sentence, term.text)
    options = sorted([answer, *wrong], key=lambda o: digest(sentence, o))
    noun = {"year": "year", "month": "month", "name": "name"}.get(term.kind, "term")
    question = f"Which {noun} best completes the sentence? \"{blank(sentence, term.text)}\""
    return writer.draft(index, "multiple_choice", "remember", question, answer, passage, sentence, options)


def true_false(writer: Writer, passage: Passage, sentence: str, index: int) -> Draft | None:
    if len(sentence.split()) > MAX_STATEMENT_WORDS or _NEGATIVE.search(sentence):
        return None
    if int(digest(sentence)[:2], 16) % 2 == 0:
        return writer.draft(index, "true_false", "remember", TF_PREFIX + sentence, "True", passage, sentence)
    statement = writer.swapped(sentence)
    if statement is None:
        return None
    return writer.draft(index, "true_false", "remember", TF_PREFIX + statement, "False", passage, sentence)


def short_answer(writer: Writer, passage: Passage, sentence: str, index: int) -> Draft | None:
    for clause in sentence.split("; "):
        asked = _definition_question(clause)
        if asked and not re.search(r"\b(this|these|that|those|it|its)\b", asked[0], flags=re.IGNORECASE):
            return writer.draft(index, "short_answer", "remember", asked[0], asked[1], passage, sentence)
    term = writer.key_term(sentence)
    if term is None:
        return None
    question = f"Fill in the blank: \"{blank(sentence, term.text)}\""
    return writer.draft(index, "short_answer", "remember", question, as_in(sentence, term.text), passage,
                        sentence)


def _definition_question(clause: str) -> tuple[str, str] | None:
    """(question, answer) from "X is called Y", "X, also called Y, ..." or "X is Y."."""
    if match := _ALSO.match(clause):
        return f"What is another name for {lower_first(match['x'])}?", match["y"].strip()
    if match := _CALLED.match(clause):
        subject = re.sub(r"^\w+, ", "", match["x"])
        if len(re.findall(r"\w+", subject)) >= 3:
            return f"What {match['verb']} {lower_first(subject)} called?", match["y"].strip()
    if match := _IS.match(clause):
        return f"What {match['verb']} {lower_first(match['x'])}?", match["y"].strip()
    return None


