"""The offline provider: real questions from the passages, extractive and deterministic.

Used when no LLM key is configured. Every question comes from one sentence of a passage (its
``evidence``): multiple choice blanks a key term and offers distractors drawn from the document's
own key terms of the same kind; true/false states the sentence as it is, or with one term swapped
for another of the same kind; short answer asks for a defined term ("X is called Y", "X, also
called Y", "X is Y") or fills a blank. Validation checks each draft against the source text.
Same input, same output: choices are ordered by content hashes, never by chance.
"""

from __future__ import annotations

import hashlib
import re

from gabay.questions.models import Draft, Passage, QuestionTask, QuestionType, normalize
from gabay.questions.offline.terms import Term, contains, key_terms, sentences

BLANK = "_____"
TF_PREFIX = "True or false: "
_KIND_PREFERENCE = {"defined": 0, "name": 1, "year": 2, "month": 3, "term": 4}
_CALLED = re.compile(r"^(?P<x>.{8,120}?),? (?P<verb>is|are|was|were) (?:often |also |usually )?"
                     r"(?:called|known as) (?:the )?(?P<y>[^,;()]{2,60}?)\.?$")
_ALSO = re.compile(r"^(?P<x>[^,]{4,80}), (?:also )?(?:called|known as) (?:the )?(?P<y>[^,]{2,60}),")
_IS = re.compile(r"^(?P<x>[A-Z][\w -]{2,40}?) (?P<verb>is|are) (?:simply )?(?P<y>(?:the|a|an) [^,;]{8,140}?)"
                 r"(?:[,;].*)?\.$")


def _digest(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()


def generate_drafts(task: QuestionTask, wanted: int) -> list[Draft]:
    """Up to ``wanted`` drafts, cycling through the requested types."""
    terms = key_terms([p.text for p in task.passages])
    used = {normalize(q.evidence) for q in task.accepted}
    slots = _ordered_sentences(task)
    makers = {"multiple_choice": _multiple_choice, "true_false": _true_false,
              "short_answer": _short_answer}
    drafts: list[Draft] = []
    exhausted: set[str] = set()
    position = 0
    while len(drafts) < wanted and len(exhausted) < len(task.question_types):
        qtype = task.question_types[position % len(task.question_types)]
        position += 1
        if qtype in exhausted:
            continue
        for passage, sentence in slots:
            if normalize(sentence) in used:
                continue
            draft = makers[qtype](task, passage, sentence, terms, len(drafts))
            if draft is not None:
                used.add(normalize(sentence))
                drafts.append(draft)
                break
        else:
            exhausted.add(qtype)
    return drafts


def _ordered_sentences(task: QuestionTask) -> list[tuple[Passage, str]]:
    """Sentences round-robin across passages; short ones first for easy, long ones for hard."""
    per_passage = [[(p, s) for s in sentences(p.text)] for p in task.passages]
    if task.difficulty != "medium":
        for group in per_passage:
            group.sort(key=lambda ps: len(ps[1]), reverse=task.difficulty == "hard")
    ordered = []
    for index in range(max((len(g) for g in per_passage), default=0)):
        ordered += [group[index] for group in per_passage if index < len(group)]
    return ordered


def _key_term(task: QuestionTask, sentence: str, terms: list[Term]) -> Term | None:
    """The term to ask about: once in the sentence, most important kind first, longest first."""
    present = [t for t in terms if contains(sentence, t.text) == 1 and len(t.text) < len(sentence) * 0.6]
    present.sort(key=lambda t: (_KIND_PREFERENCE[t.kind], -len(t.text), t.text))
    if not present:
        return None
    return present[(task.round - 1) % len(present)]


def _distractors(answer: Term, sentence: str, terms: list[Term], needed: int = 3) -> list[str]:
    """Other key terms of the same kind (then any non-date kind), absent from the sentence."""
    def fits(term: Term, chosen: list[str]) -> bool:
        text = term.text.casefold()
        return not contains(sentence, term.text) and all(
            text not in other.casefold() and other.casefold() not in text
            for other in [answer.text, *chosen])

    chosen: list[str] = []
    pools = [[t for t in terms if t.family == answer.family]]
    if answer.family not in ("year", "month"):
        pools.append([t for t in terms if t.family not in ("year", "month", answer.family)])
    for pool in pools:
        for term in sorted(pool, key=lambda t: _digest(sentence, t.text)):
            if len(chosen) < needed and fits(term, chosen):
                chosen.append(term.text)
    if answer.kind == "year" and len(chosen) < needed:
        for offset in (1, -1, 2, -2, 3, -3, 4, -4):
            year = str(int(answer.text) + offset)
            if len(chosen) < needed and year not in chosen and not contains(sentence, year):
                chosen.append(year)
    return chosen if len(chosen) == needed else []


def _blank(sentence: str, term: str) -> str:
    return re.sub(rf"(?<![\w-]){re.escape(term)}(?![\w-])", BLANK, sentence, count=1, flags=re.IGNORECASE)


def _draft(task: QuestionTask, index: int, qtype: QuestionType, question: str, answer: str,
           passage: Passage, sentence: str, options: list[str] | None = None) -> Draft:
    return Draft(id=f"r{task.round}-d{index + 1}", type=qtype, question=question,
                 options=options or [], answer=answer, passage_id=passage.id, evidence=sentence)


def _multiple_choice(task: QuestionTask, passage: Passage, sentence: str, terms: list[Term],
                     index: int) -> Draft | None:
    term = _key_term(task, sentence, terms)
    if term is None:
        return None
    wrong = _distractors(term, sentence, terms)
    if not wrong:
        return None
    answer = _as_in(sentence, term.text)
    options = sorted([answer, *wrong], key=lambda o: _digest(sentence, o))
    noun = {"year": "year", "month": "month", "name": "name"}.get(term.kind, "term")
    question = f"Which {noun} best completes the sentence? \"{_blank(sentence, term.text)}\""
    return _draft(task, index, "multiple_choice", question, answer, passage, sentence, options)


def _true_false(task: QuestionTask, passage: Passage, sentence: str, terms: list[Term],
                index: int) -> Draft | None:
    true = int(_digest(sentence)[:2], 16) % 2 == 0
    if true:
        return _draft(task, index, "true_false", TF_PREFIX + sentence, "True", passage, sentence)
    term = _key_term(task, sentence, terms)
    wrong = _distractors(term, sentence, terms, needed=1) if term else []
    if term is None or not wrong:
        return None
    statement = re.sub(rf"(?<![\w-]){re.escape(term.text)}(?![\w-])", wrong[0], sentence, count=1,
                       flags=re.IGNORECASE)
    statement = statement[0].upper() + statement[1:]
    return _draft(task, index, "true_false", TF_PREFIX + statement, "False", passage, sentence)


def _short_answer(task: QuestionTask, passage: Passage, sentence: str, terms: list[Term],
                  index: int) -> Draft | None:
    for clause in sentence.split("; "):
        asked = _definition_question(clause)
        if asked:
            return _draft(task, index, "short_answer", asked[0], asked[1], passage, sentence)
    term = _key_term(task, sentence, terms)
    if term is None:
        return None
    question = f"Fill in the blank: \"{_blank(sentence, term.text)}\""
    return _draft(task, index, "short_answer", question, _as_in(sentence, term.text), passage, sentence)


def _definition_question(clause: str) -> tuple[str, str] | None:
    """(question, answer) from "X is called Y", "X, also called Y, ..." or "X is Y."."""
    if match := _ALSO.match(clause):
        return f"What is another name for {_lower_first(match['x'])}?", match["y"].strip()
    if match := _CALLED.match(clause):
        subject = re.sub(r"^\w+, ", "", match["x"])
        if len(re.findall(r"\w+", subject)) >= 3:
            return f"What {match['verb']} {_lower_first(subject)} called?", match["y"].strip()
    if match := _IS.match(clause):
        return f"What {match['verb']} {_lower_first(match['x'])}?", match["y"].strip()
    return None


def _lower_first(text: str) -> str:
    """Lower-case the first word unless the text starts with a name ("Jose Rizal")."""
    words = text.split()
    if not words or not words[0][:1].isupper() or words[0][1:] != words[0][1:].lower():
        return text
    if len(words) > 1 and words[1][:1].isupper():
        return text
    return text[0].lower() + text[1:]


def _as_in(sentence: str, term: str) -> str:
    """The term as the sentence writes it (its case)."""
    match = re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", sentence, flags=re.IGNORECASE)
    return match.group(0) if match else term
