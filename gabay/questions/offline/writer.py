"""The offline writer's shared tools: key terms to ask about, distractors, the draft itself.

See :mod:`gabay.questions.offline.drafts` for what the offline writer writes and why.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from gabay.questions.flaws import FlawContext
from gabay.questions.flaws.statements import is_title
from gabay.questions.flaws.text import kind_of
from gabay.questions.models import BloomLevel, Draft, Passage, QuestionTask, QuestionType
from gabay.questions.offline.closeness import Contexts
from gabay.questions.offline.terms import Term, contains

BLANK = "_____"
TF_PREFIX = "True or false: "
_KIND_PREFERENCE = {"defined": 0, "name": 1, "year": 2, "month": 3, "term": 4}
#: How close (shared neighbour words) a stand-in term must be for a swap in a false statement.
SWAP_CLOSENESS = 0.12


def digest(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()


@dataclass
class Writer:
    """What every maker needs: the task, the key terms, their contexts, the flaw rules' context."""

    task: QuestionTask
    terms: list[Term]
    contexts: Contexts
    flaw_context: FlawContext
    #: Stems already asked (this round's drafts and the accepted questions): not asked twice.
    asked: set[str] = field(default_factory=set)

    def distractors(self, answer: Term, sentence: str, needed: int = 3) -> list[str]:
        """Other key terms of the answer's family and kind, absent from the sentence.

        Among those that fit the answer's slot (used after the same word elsewhere), ordered by
        closeness to the answer: the farthest for easy, the closest for hard, hash order for medium.
        """
        preceding = preceding_word(sentence, answer.text)
        pool = [t for t in self.terms if t.family == answer.family and kind_of(t.text) == kind_of(answer.text)
                and _apart(t.text, answer.text) and not contains(sentence, t.text)
                and abs(len(t.text.split()) - len(answer.text.split())) <= 1]
        fitting = [t for t in pool if self.contexts.fits_slot(t.text, preceding)]
        pool = fitting if len(fitting) >= needed else pool
        difficulty = self.task.difficulty
        if difficulty == "medium":
            pool.sort(key=lambda t: digest(sentence, t.text))
        else:
            pool.sort(key=lambda t: (self.contexts.closeness(answer.text, t.text), digest(sentence, t.text)),
                      reverse=difficulty == "hard")
        chosen: list[str] = []
        for term in pool:
            if len(chosen) < needed and all(_apart(term.text, other) for other in chosen):
                chosen.append(term.text)
        if answer.kind == "year" and len(chosen) < needed:
            step = 1 if difficulty == "hard" else 5 if difficulty == "easy" else 2
            for offset in (step, -step, 2 * step, -2 * step, 3 * step, -3 * step):
                year = str(int(answer.text) + offset)
                if len(chosen) < needed and year not in chosen and not contains(sentence, year):
                    chosen.append(year)
        return chosen if len(chosen) == needed else []

    def key_term(self, sentence: str) -> Term | None:
        """The term to ask about: once in the sentence, not a title, most important kind first."""
        present = [t for t in self.terms if contains(sentence, t.text) == 1
                   and len(t.text) < len(sentence) * 0.6 and not is_title(t.text, self.flaw_context.titles)]
        present.sort(key=lambda t: (_KIND_PREFERENCE[t.kind], -len(t.text), t.text))
        if not present:
            return None
        return present[(self.task.round - 1) % len(present)]

    def draft(self, index: int, qtype: QuestionType, level: BloomLevel, question: str, answer: str,
              passage: Passage, sentence: str, options: list[str] | None = None) -> Draft:
        return Draft(id=f"r{self.task.round}-d{index + 1}", type=qtype, question=question,
                     options=options or [], answer=answer, passage_id=passage.id, evidence=sentence,
                     bloom_level=level)

    def swapped(self, sentence: str) -> str | None:
        """The sentence with its key term swapped for a same-kind term that fits the slot: False."""
        term = self.key_term(sentence)
        return self.swap(sentence, term) if term else None

    def swap(self, sentence: str, term: Term) -> str | None:
        """``sentence`` with ``term`` replaced by a stand-in that keeps it grammatical, or None.

        A year for a year; a defined term for a defined term ("called stomata" -> "called
        thylakoids"); any other term only for one used in close contexts after the same word, with
        the same grammatical number: a place is not swapped for a treaty ("signed the Pampanga").
        """
        if term.kind == "year":
            wrong = self.distractors(term, sentence, needed=1)
        else:
            preceding = preceding_word(sentence, term.text)
            following = following_word(sentence, term.text)
            if not preceding:
                return None
            wrong = [t.text for t in self.terms
                     if t.family == term.family and kind_of(t.text) == kind_of(term.text)
                     and _apart(t.text, term.text) and not contains(sentence, t.text)
                     and _plural(t.text) == _plural(term.text)
                     and (term.kind != "name" or len(t.text.split()) == len(term.text.split()))
                     and self.contexts.fits_slot(t.text, preceding)
                     and self.contexts.agrees(t.text, following)
                     and ((t.kind == term.kind == "defined")
                          or self.contexts.closeness(term.text, t.text) >= SWAP_CLOSENESS)]
            wrong.sort(key=lambda w: digest(sentence, w))
        if not wrong:
            return None
        statement = re.sub(rf"(?<![\w-]){re.escape(term.text)}(?![\w-])", wrong[0], sentence, count=1,
                           flags=re.IGNORECASE)
        return statement[0].upper() + statement[1:]


def following_word(sentence: str, term: str) -> str:
    match = re.search(rf"(?<![\w-]){re.escape(term)}\W+([\w-]+)", sentence, flags=re.IGNORECASE)
    return match.group(1).casefold() if match else ""


def _plural(text: str) -> bool:
    last = text.split()[-1] if text.split() else ""
    return last.islower() and last.endswith("s") and not last.endswith("ss")


def _apart(first: str, second: str) -> bool:
    """Neither text inside the other (case-insensitive)."""
    a, b = first.casefold(), second.casefold()
    return a not in b and b not in a


def preceding_word(sentence: str, term: str) -> str:
    match = re.search(rf"([\w-]+)\W+{re.escape(term)}(?![\w-])", sentence, flags=re.IGNORECASE)
    return match.group(1).casefold() if match else ""


def blank(sentence: str, term: str) -> str:
    return re.sub(rf"(?<![\w-]){re.escape(term)}(?![\w-])", BLANK, sentence, count=1, flags=re.IGNORECASE)


def lower_first(text: str) -> str:
    """Lower-case the first word unless the text starts with a name ("Jose Rizal")."""
    words = text.split()
    if not words or not words[0][:1].isupper() or words[0][1:] != words[0][1:].lower():
        return text
    if len(words) > 1 and words[1][:1].isupper():
        return text
    return text[0].lower() + text[1:]


def as_in(sentence: str, term: str) -> str:
    """The term as the sentence writes it (its case)."""
    match = re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", sentence, flags=re.IGNORECASE)
    return match.group(0) if match else term
