"""The blind round trip: an answerer that never sees the answer key answers each draft from the passages.

A question whose key the answerer does not reach is ambiguous, unanswerable from the text, or
keyed wrong: validation rejects it (QGEval finds answerability and answer consistency to be where
question generators fail most). Two answerers:

- :func:`answer_offline`: term overlap over the passages' sentences (BM25-like weights): the
  option whose words best match one sentence that also matches the stem; for true/false, whether
  the statement is a sentence of the text; for a blank, the words that fill it in the best
  matching sentence; for other short answers, the best matching sentence itself;
- a language model, given the passages and the questions without their keys
  (:data:`ANSWER_SYSTEM`, :func:`answer_prompt`, :func:`parse_answers`).

:func:`agrees` compares an answer with the key.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

from gabay.questions.flaws.stems import statement_of
from gabay.questions.flaws.text import BLANK_RE, quoted
from gabay.questions.models import Draft, Passage, QuestionTask, normalize
from gabay.questions.offline.terms import dated_event, sentences
from gabay.questions.retrieval import tokenize

#: Share of the key's words a short answer must contain to agree with it.
SHORT_ANSWER_OVERLAP = 0.6

ANSWER_SYSTEM = """You are a careful student taking an exam on a source document.
Answer each question using only the given passages. For multiple choice, answer with the exact
text of one option. For true/false, answer "True" or "False". For short answer, answer in a few
words. If the passages do not let you answer, answer "unknown".
Answer with a JSON object: {"answers": [{"id": "...", "answer": "..."}]}, one per question id."""


class Sentences:
    """The passages' sentences with inverse document frequencies, for overlap scores."""

    def __init__(self, passages: list[Passage]) -> None:
        self.texts = [s for p in passages for s in (sentences(p.text) or [p.text])]
        self.tokens = [Counter(tokenize(s)) for s in self.texts]
        df: Counter[str] = Counter()
        for tokens in self.tokens:
            df.update(set(tokens))
        n = max(1, len(self.texts))
        self.idf = {word: math.log(1 + n / count) for word, count in df.items()}

    def score(self, words: list[str], index: int) -> float:
        sentence = self.tokens[index]
        return sum(self.idf.get(w, 0.0) for w in set(words) if w in sentence)

    def best(self, words: list[str]) -> int | None:
        scores = [self.score(words, i) for i in range(len(self.texts))]
        if not scores or max(scores) == 0:
            return None
        return scores.index(max(scores))


def answer_offline(draft: Draft, passages: list[Passage]) -> str:
    """The answer the passages give to ``draft``, chosen without looking at its key."""
    found = Sentences(passages)
    if draft.type == "true_false":
        statement = normalize(statement_of(draft))
        return "True" if any(statement in normalize(s) for s in found.texts) else "False"
    stem = tokenize(BLANK_RE.sub(" ", draft.question))
    if draft.type == "multiple_choice":
        return _choose(draft, found, stem)
    if BLANK_RE.search(draft.question):
        return _fill(draft, found) or "unknown"
    defining = _defining_sentence(draft.question, found)
    if defining is not None:
        return defining
    index = found.best(stem)
    return found.texts[index] if index is not None else "unknown"


_WHAT_IS = re.compile(r"^What (is|are|was|were) (?P<x>.+?)\??$", re.IGNORECASE)


def _defining_sentence(question: str, found: Sentences) -> str | None:
    """For "What is X?", the sentence that says "X is ..." (a definition), if the text has one."""
    match = _WHAT_IS.match(question.strip())
    if not match or match["x"].endswith(" called"):
        return None
    says = re.compile(rf"^(?:the |an? )?{re.escape(match['x'].strip())} (?:is|are|was|were)\b", re.IGNORECASE)
    return next((text for text in found.texts if says.search(text)), None)


def _choose(draft: Draft, found: Sentences, stem: list[str]) -> str:
    """The option that, with the stem, matches one sentence best (its own words weigh double)."""
    sentence = quoted(draft.question)

    if (order := _ORDER.search(draft.question)) is not None:
        return _in_order(draft, found, first=order.group(1).casefold() in ("first", "earliest"))

    def fit(option: str) -> float:
        if sentence and BLANK_RE.search(sentence):
            filled = normalize(BLANK_RE.sub(option, sentence))
            if any(filled in normalize(s) for s in found.texts):
                return math.inf
        words = tokenize(option)
        if not words:
            return 0.0
        best = 0.0
        for i in range(len(found.texts)):
            covered = found.score(words, i) / max(1e-9, sum(found.idf.get(w, 1.0) for w in set(words)))
            exact = 1.0 if normalize(option) in normalize(found.texts[i]) else 0.0
            best = max(best, 2 * covered + exact + found.score(stem, i) / 10)
        return best

    scored = sorted(draft.options, key=fit, reverse=True)
    return scored[0] if scored else "unknown"


_ORDER = re.compile(r"\bwhich of these (?:happened|came) (first|last|earliest|latest)\b", re.IGNORECASE)


def _in_order(draft: Draft, found: Sentences, *, first: bool) -> str:
    """The option whose dated sentence in the text is the earliest (or the latest)."""
    dates = {}
    for option in draft.options:
        for text in found.texts:
            event = dated_event(text)
            if event and normalize(option) in normalize(event[1]):
                dates[option] = event[0]
    if len(dates) < len(draft.options):
        return "unknown"
    return (min if first else max)(dates, key=lambda o: dates[o])


def _fill(draft: Draft, found: Sentences) -> str | None:
    """The words between the blank's neighbours in the sentence that matches the rest."""
    sentence = quoted(draft.question) or draft.question
    before, after = [*BLANK_RE.split(sentence, maxsplit=1), ""][:2]
    index = found.best(tokenize(sentence))
    if index is None:
        return None
    text = found.texts[index]
    head = re.escape(before.strip()[-40:]) if before.strip() else "^"
    tail = re.escape(after.strip()[:40]) if after.strip() else "$"
    match = re.search(rf"{head}\s*(.+?)\s*{tail}", text, flags=re.IGNORECASE)
    return match.group(1).strip(" ,") if match else None


def agrees(draft: Draft, answer: str) -> bool:
    """The answerer's answer is the key (same option, same truth value, or the key's words)."""
    given, key = normalize(answer), normalize(draft.answer)
    if draft.type == "multiple_choice":
        return _as_option(draft, given) == key
    if draft.type == "true_false":
        return given == key
    if not given or given == "unknown":
        return False
    if key in given or (given in key and len(given) >= len(key) / 2):
        return True
    words = set(key.split())
    return len(words & set(given.split())) / max(1, len(words)) >= SHORT_ANSWER_OVERLAP


def _as_option(draft: Draft, given: str) -> str:
    """A model's choice as an option's text: "b", "b oxygen" and "oxygen" all name the 2nd option."""
    options = [normalize(o) for o in draft.options]
    if given in options:
        return given
    letter, _, rest = given.partition(" ")
    if len(letter) == 1 and "a" <= letter <= "z" and ord(letter) - ord("a") < len(options):
        chosen = options[ord(letter) - ord("a")]
        if not rest or rest == chosen:
            return chosen
    return given


def answer_prompt(task: QuestionTask, drafts: list[Draft]) -> str:
    """The user message: the passages first (the same prefix as the other stages), no answer keys."""
    return json.dumps({
        "document_title": task.title,
        "passages": [p.model_dump() for p in task.passages],
        "task": "answer_questions",
        "questions": [{"id": d.id, "type": d.type, "question": d.question, "options": d.options}
                      for d in drafts],
    }, ensure_ascii=False)


def check_answers(data: dict[str, Any], drafts: list[Draft]) -> None:
    """Refuse (ValueError: the provider is asked again) an answer that misses a question id."""
    missing = {d.id for d in drafts} - set(parse_answers(data))
    if missing:
        raise ValueError(f"no answer for {sorted(missing)}; answer every question id")


def parse_answers(data: dict[str, Any]) -> dict[str, str]:
    """Draft id -> the model's answer; drafts it did not answer are missing."""
    raw = data.get("answers")
    return {str(item["id"]): str(item.get("answer", "")) for item in (raw if isinstance(raw, list) else [])
            if isinstance(item, dict) and isinstance(item.get("id"), str)}
