"""Questions above recall, offline: understand (which statement is true) and analyse (cause and effect).

- understand, multiple choice: "Which statement about photosynthesis is true?" One option is a
  sentence of the text about that term; the three others are other sentences about it with one key
  term swapped for a same-kind term that fits the slot, so each is false and none is a copy of the
  others.
- analyse, multiple choice: from a causal sentence ("A, which can lead to B", "A, so B", "B because
  A", "If A, B") the question gives one side and asks for the other; distractors are clauses of
  other sentences of a similar length.

:data:`MAKERS` maps each level and type to its maker (None: the level has no offline maker for
that type, and the writer falls back to the level below).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from gabay.questions.flaws.statements import is_title
from gabay.questions.models import BloomLevel, Draft, Passage, QuestionType, normalize
from gabay.questions.offline import recall
from gabay.questions.offline.terms import contains, dated_event, sentences
from gabay.questions.offline.writer import Writer, digest

Maker = Callable[[Writer, Passage, str, int], "Draft | None"]
MAX_OPTION_WORDS = 25
_PRONOUN = re.compile(r"^(it|its|he|she|his|her|they|their|these|this|those)\b", re.IGNORECASE)
_CAUSAL: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?P<cause>[A-Z][^;]{10,160}?), which (?:can |may |often )?(?:lead|leads|led) to "
                r"(?P<effect>[^,;]{4,100})\.$"), "effect"),
    (re.compile(r"^(?P<cause>[A-Z][^;]{10,160}?), so (?P<effect>[^;]{10,160})\.$"), "effect"),
    (re.compile(r"^(?P<effect>[A-Z][^;]{10,160}?) because (?P<cause>[^;]{10,160})\.$"), "cause"),
    (re.compile(r"^If (?P<cause>[^,]{6,120}), (?P<effect>[^;]{10,160})\.$"), "effect"),
]


def statement_about(writer: Writer, passage: Passage, sentence: str, index: int) -> Draft | None:
    """Understand: which of three or four statements about a term of the sentence is the text's own.

    The term is the one of the sentence that most other sentences mention (the sentence's topic).
    """
    if len(sentence.split()) > MAX_OPTION_WORDS or _PRONOUN.match(sentence):
        return None
    everything = _all_sentences(writer)
    present = [t for t in writer.terms if contains(sentence, t.text) == 1 and t.kind not in ("year", "month")
               and not is_title(t.text, writer.flaw_context.titles)]
    if not present:
        return None
    present = [t for t in present if _statement_stem(t.text) not in writer.asked]
    if not present:
        return None
    term = max(present, key=lambda t: (sum(1 for o in everything if contains(o, t.text)), -len(t.text)))
    others: list[str] = []
    for other in everything:
        if other == sentence or contains(other, term.text) == 0 or len(other.split()) > MAX_OPTION_WORDS:
            continue
        if not 0.6 <= len(other) / len(sentence) <= 1.5 or other[:1].islower() or _PRONOUN.match(other):
            continue
        false = _swap_other_than(writer, other, term.text)
        if false and all(normalize(false) != normalize(o) for o in others):
            others.append(false)
    if len(others) < 2:  # three options are enough (the structural checks allow 3-6)
        return None
    others.sort(key=lambda o: digest(sentence, o))
    options = sorted([sentence, *others[:3]], key=lambda o: digest(sentence, o))
    return writer.draft(index, "multiple_choice", "understand", _statement_stem(term.text), sentence, passage,
                        sentence, options)


def _statement_stem(term: str) -> str:
    return f"Which statement about {term} is true according to the text?"


def _swap_other_than(writer: Writer, sentence: str, keep: str) -> str | None:
    """The sentence made false by swapping one of its key terms, other than ``keep``."""
    for term in writer.terms:
        if term.text.casefold() == keep.casefold() or contains(sentence, term.text) != 1:
            continue
        if keep.casefold() in term.text.casefold() or term.text.casefold() in keep.casefold():
            continue
        swapped = writer.swap(sentence, term)
        if swapped:
            return swapped
    return None


def cause_and_effect(writer: Writer, passage: Passage, sentence: str, index: int) -> Draft | None:
    """Analyse: what a cause in the text leads to, or what an effect was caused by."""
    for pattern, asked in _CAUSAL:
        match = pattern.match(sentence)
        if not match:
            continue
        given = match["cause"] if asked == "effect" else match["effect"]
        answer = match[asked].strip()
        wrong = _clauses_like(writer, answer, sentence)
        if len(wrong) < 3:
            return None
        options = sorted([answer, *wrong[:3]], key=lambda o: digest(sentence, o))
        if asked == "effect":
            question = f"According to the text, what is the effect of this? \"{given.strip()}\""
        else:
            question = f"According to the text, what is the cause of this? \"{given.strip()}\""
        return writer.draft(index, "multiple_choice", "analyse", question, answer, passage, sentence, options)
    return None


def _clauses_like(writer: Writer, answer: str, sentence: str) -> list[str]:
    """Clauses of other sentences with about as many words as ``answer``, in hash order."""
    size = len(answer.split())
    found: list[str] = []
    for other in _all_sentences(writer):
        if other == sentence:
            continue
        for clause in re.split(r", (?:and |but |so |which )?|; | because ", other.rstrip(".")):
            clause = clause.strip()
            words = clause.split()
            sized = bool(words) and abs(len(words) - size) <= max(1, size // 3) and clause[:1].islower()
            if not sized or words[0] in _WEAK_OPENINGS or "called" in words:
                continue
            if normalize(clause) not in normalize(sentence) and normalize(clause) not in (
                    normalize(f) for f in found):
                found.append(clause)
    return sorted(found, key=lambda c: digest(answer, c))


_WEAK_OPENINGS = frozenset({"also", "this", "it", "these", "which", "and", "or", "but", "smoke", "then"})


def _all_sentences(writer: Writer) -> list[str]:
    return [s for p in writer.task.passages for s in sentences(p.text)]


_CALLED_TERM = re.compile(r"((?:[\w-]+ ){1,5})(?:called|known as) (?:the )?([A-Za-z][\w-]*(?: [a-z][\w-]+)?)"
                          r"(?=[.,;:)]|$)")
_DESCRIPTION_STOP = frozenset({"the", "a", "an", "of", "in", "into", "through", "by", "and", "or", "is",
                               "are", "was", "were", "stored", "on", "from", "with", "to", "this", "sediment",
                               "also", "often", "usually", "simply", "inside", "together"})
_GENERIC = frozenset({"process", "processes", "thing", "things", "way", "stage", "part", "event"})


def descriptions(writer: Writer) -> dict[str, tuple[str, str]]:
    """Defined term -> (what the text calls it, the sentence): "stomata" -> "small pores"."""
    found: dict[str, tuple[str, str]] = {}
    for sentence in _all_sentences(writer):
        for match in _CALLED_TERM.finditer(sentence):
            words = match.group(1).split()
            kept: list[str] = []
            for word in reversed(words):
                if word.casefold() in _DESCRIPTION_STOP or word.endswith(","):
                    break
                kept.insert(0, word)
            generic = {w.casefold() for w in kept} <= _GENERIC
            if kept and not generic and match.group(2).casefold() not in found:
                found[match.group(2).casefold()] = (" ".join(kept), sentence)
    shared = Counter(normalize(desc) for desc, _ in found.values())
    return {term: (desc, where) for term, (desc, where) in found.items() if shared[normalize(desc)] == 1}


def description_of(writer: Writer, passage: Passage, sentence: str, index: int) -> Draft | None:
    """Understand: which description fits a term the text defines ("small pores" for stomata)."""
    known = descriptions(writer)
    mine = [(term, desc) for term, (desc, where) in known.items() if where == sentence]
    if not mine:
        return None
    term, answer = mine[0]
    others = sorted({d for t, (d, _) in known.items() if t != term and normalize(d) != normalize(answer)
                     and not contains(sentence, d)}, key=lambda d: digest(sentence, d))
    if len(others) < 2:  # three options are enough (the structural checks allow 3-6)
        return None
    options = sorted([answer, *others[:3]], key=lambda o: digest(sentence, o))
    shown = next((m.group(2) for m in _CALLED_TERM.finditer(sentence) if m.group(2).casefold() == term), term)
    question = f"Which of these best describes {shown}, as the text uses the term?"
    return writer.draft(index, "multiple_choice", "understand", question, answer, passage, sentence, options)


def understand_choice(writer: Writer, passage: Passage, sentence: str, index: int) -> Draft | None:
    described = description_of(writer, passage, sentence, index)
    return described or statement_about(writer, passage, sentence, index)


FIRST = "According to the text, which of these happened first?"
LAST = "According to the text, which of these happened last?"


def sequence(writer: Writer, passage: Passage, sentence: str, index: int) -> Draft | None:
    """Analyse: which of three or four dated events of the text came first (or last).

    The options are the events without their dates; the answer is this sentence's event.
    """
    mine = dated_event(sentence)
    if mine is None:
        return None
    events: dict[tuple[int, int, int], str] = {}
    for other in _all_sentences(writer):
        found = dated_event(other)
        if found and other != sentence and found[0] != mine[0] and len(found[1].split()) <= MAX_OPTION_WORDS:
            events.setdefault(found[0], found[1])
    later = sorted((e for d, e in events.items() if d > mine[0]), key=lambda e: digest(sentence, e))
    earlier = sorted((e for d, e in events.items() if d < mine[0]), key=lambda e: digest(sentence, e))
    stem, others = (FIRST, later) if len(later) >= len(earlier) else (LAST, earlier)
    if len(others) < 2 or f"{stem} {mine[1]}" in writer.asked:
        return None
    options = sorted([mine[1], *others[:3]], key=lambda o: digest(sentence, o))
    return writer.draft(index, "multiple_choice", "analyse", stem, mine[1], passage, sentence, options)


def analyse_choice(writer: Writer, passage: Passage, sentence: str, index: int) -> Draft | None:
    return cause_and_effect(writer, passage, sentence, index) or sequence(writer, passage, sentence, index)


MAKERS: dict[BloomLevel, dict[QuestionType, Maker | None]] = {
    "remember": {"multiple_choice": recall.multiple_choice, "true_false": recall.true_false,
                 "short_answer": recall.short_answer},
    "understand": {"multiple_choice": understand_choice, "true_false": None, "short_answer": None},
    "analyse": {"multiple_choice": analyse_choice, "true_false": None, "short_answer": None},
}
