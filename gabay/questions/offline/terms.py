"""Sentences and key terms of a text, for the offline (extractive) question generator.

A key term is something worth blanking out: a term the text defines ("a process called
photosynthesis"), a name ("Andres Bonifacio"), a year, or a content word or word pair the text
uses more than once. Each has a kind, so that distractors can be of the same kind.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass

from gabay.questions.retrieval import STOPWORDS

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_DEFINED = re.compile(
    r"\b(?:called|known as|named)\s+(?:the\s+)?([A-Za-z][\w-]*(?:\s[A-Za-z][\w-]*)?)(?=[.,;:)]|\s\(|$)"
)
_NAME = re.compile(r"\b[A-Z][\w-]+(?:\s+(?:of\s+|ng\s+|de\s+)?[A-Z][\w-]+)*")
_YEAR = re.compile(r"\b1[5-9]\d\d\b|\b20\d\d\b")
_WORD = re.compile(r"[A-Za-z][a-z-]{3,}")
_LEADING = STOPWORDS | {"in", "on", "by", "at", "its", "during", "using", "each", "two", "some",
                        "many", "most", "once", "together", "cooler", "if"}
_NOT_TERMS = _LEADING | {"called", "known", "named", "against", "between", "through", "other",
                         "often", "later", "whose", "place", "take", "takes", "become", "became",
                         "usually", "because", "since", "every", "three", "being", "which"}
#: Words after which a content word is used as a noun ("the stroma", "of oxygen").
_NOUN_CUES = {"the", "a", "an", "of", "into", "from", "its", "their"}
MONTHS = frozenset({
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december"
})


@dataclass(frozen=True)
class Term:
    text: str
    kind: str  # defined | name | year | term

    @property
    def family(self) -> str:
        """Kinds that can stand in for each other as distractors."""
        return {"defined": "term", "term": "term"}.get(self.kind, self.kind)


def sentences(text: str) -> list[str]:
    """The sentences of a passage (at least five words each)."""
    found = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    return [s for s in found if len(s.split()) >= 5]


def contains(sentence: str, term: str) -> int:
    """How many times ``term`` occurs in ``sentence`` as whole words (case-insensitive)."""
    return len(re.findall(rf"(?<![\w-]){re.escape(term)}(?![\w-])", sentence, flags=re.IGNORECASE))


def key_terms(texts: list[str]) -> list[Term]:
    """The key terms of the texts, most important kinds first, each once (case-insensitive)."""
    joined = "\n".join(texts)
    found: dict[str, Term] = {}

    def add(text: str, kind: str) -> None:
        text = text.strip(" -")
        if len(text) >= 3 and text.casefold() not in found and text.casefold() not in STOPWORDS:
            found[text.casefold()] = Term(text, kind)

    for match in _DEFINED.finditer(joined):
        add(match.group(1), "defined")
    for sentence in sentences(joined):
        for match in _NAME.finditer(sentence):
            words = match.group(0).split()
            while words and words[0].casefold() in _LEADING:
                words.pop(0)
            if words and (match.start() > 0 or len(words) > 1):
                add(" ".join(words), "name")
    for match in _YEAR.finditer(joined):
        add(match.group(0), "year")
    for text in _frequent_terms(texts):
        add(text, "term")
    terms = [t if t.text.casefold() not in MONTHS else Term(t.text, "month") for t in found.values()]
    return [t for t in terms if not _part_of_longer_name(t, terms)]


def _part_of_longer_name(term: Term, terms: list[Term]) -> bool:
    """A one-word name that starts a longer term ("Calvin" of "Calvin cycle") is not a term itself."""
    if term.kind != "name" or " " in term.text:
        return False
    prefix = term.text.casefold() + " "
    return any(other.text.casefold().startswith(prefix) for other in terms)


def _frequent_terms(texts: list[str]) -> list[str]:
    """Lower-case content words and word pairs used at least twice, most frequent first."""
    words: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    nouns: set[str] = set()
    for text in texts:
        for sentence in sentences(text):
            tokens = re.findall(r"[\w-]+", sentence)
            for before, word in zip(["", *tokens], tokens, strict=False):
                if _WORD.fullmatch(word) and word.islower() and _content(word):
                    words[word] += 1
                    if before.casefold() in _NOUN_CUES:
                        nouns.add(word)
            for first, second in itertools.pairwise(tokens):
                if _content(first) and _content(second) and first.islower() and second.islower():
                    pairs[f"{first} {second}"] += 1
    chosen = [p for p, n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])) if n >= 2]
    chosen += [w for w, n in sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))
               if n >= 2 and w in nouns]
    return chosen


def _content(word: str) -> bool:
    return (len(word) >= 4 and word.casefold() not in _NOT_TERMS and not word.isdigit()
            and not word.endswith(("ed", "ly", "ing")))


_DATED = re.compile(r"^(?:In|On|By) (?:(?P<day>\d{1,2}) )?(?:(?P<month>[A-Z][a-z]+) )?"
                    r"(?P<year>1[5-9]\d\d|20\d\d),? (?P<event>[^;]{10,200})\.$")


def dated_event(sentence: str) -> tuple[tuple[int, int, int], str] | None:
    """``((year, month, day), event)`` of "In December 1897, Aguinaldo signed ...": the event capitalised.

    Only sentences that open with their date, and whose event names no other year.
    """
    match = _DATED.match(sentence.strip())
    if not match or _YEAR.search(match["event"]):
        return None
    if match["month"] and match["month"].casefold() not in MONTHS:
        return None
    month = list(MONTH_ORDER).index(match["month"].casefold()) + 1 if match["month"] else 0
    event = match["event"].strip()
    return (int(match["year"]), month, int(match["day"] or 0)), event[0].upper() + event[1:]


MONTH_ORDER = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
               "october", "november", "december")
