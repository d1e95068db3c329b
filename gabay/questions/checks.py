"""Checks on drafts that need no language model, and the choice of the final questions.

Structural checks run on every draft, whatever wrote it: requested type, a cited passage that
exists, a multiple-choice question with distinct options of which exactly one is the answer key,
true/false answered True or False, no duplicates. ``source_problem`` is the offline validator's
semantic check: the answer must be supported by the cited passage's own words.
:func:`flaws_of` runs the item-writing-flaw rules (:mod:`gabay.questions.flaws`); :func:`pick_final`
chooses the questions, meeting a requested Bloom mix first.
"""

from __future__ import annotations

from gabay.questions.bloom import targets
from gabay.questions.flaws import Flaw, FlawContext, find_flaws
from gabay.questions.models import BloomLevel, Draft, Quality, Question, QuestionTask, QuestionType, normalize
from gabay.questions.offline.drafts import BLANK, TF_PREFIX

MIN_OPTIONS, MAX_OPTIONS = 3, 6
SIMILAR = 0.85


def structural_problem(draft: Draft, task: QuestionTask) -> str | None:
    """Why the draft is malformed, or None."""
    if draft.type not in task.question_types:
        return f"type {draft.type} was not requested"
    if not draft.question.strip() or not draft.answer.strip():
        return "empty question or answer"
    if task.passage(draft.passage_id) is None:
        return f"cites unknown passage {draft.passage_id!r}"
    if draft.type == "multiple_choice":
        return _options_problem(draft)
    if draft.type == "true_false":
        if draft.answer.strip().casefold() not in ("true", "false"):
            return "a true/false answer must be True or False"
    elif draft.options:
        return "a short-answer question has no options"
    return None


def _options_problem(draft: Draft) -> str | None:
    options = [normalize(o) for o in draft.options]
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        return f"multiple choice needs {MIN_OPTIONS}-{MAX_OPTIONS} options, has {len(options)}"
    if len(set(options)) != len(options) or "" in options:
        return "options are not distinct"
    if options.count(normalize(draft.answer)) != 1:
        return "the answer key is not exactly one of the options"
    return None


def tidy(draft: Draft) -> Draft:
    """Canonical forms: True/False capitalised, the answer key spelled as its option."""
    if draft.type == "true_false":
        return draft.model_copy(update={"answer": draft.answer.strip().capitalize(), "options": []})
    if draft.type == "multiple_choice":
        key = normalize(draft.answer)
        answer = next((o for o in draft.options if normalize(o) == key), draft.answer)
        return draft.model_copy(update={"answer": answer})
    return draft


def is_duplicate(draft: Draft | Question, kept: list[Question]) -> bool:
    """Same question (word overlap of 85 % or more) or same fact asked the same way twice."""
    words = set(normalize(draft.question).split())
    for other in kept:
        theirs = set(normalize(other.question).split())
        overlap = len(words & theirs) / max(1, len(words | theirs))
        if overlap >= SIMILAR:
            return True
        same_fact = normalize(other.evidence) == normalize(draft.evidence) and (
            normalize(other.answer) == normalize(draft.answer))
        if other.type == draft.type and draft.evidence and same_fact:
            return True
    return False


def source_problem(draft: Draft, task: QuestionTask) -> str | None:
    """Why the cited passage does not support the answer key, or None (the offline validator)."""
    passage = task.passage(draft.passage_id)
    if passage is None:
        return "cites an unknown passage"
    text = normalize(passage.text)
    everything = normalize(" ".join(p.text for p in task.passages))
    evidence = normalize(draft.evidence)
    if not evidence or evidence not in text:
        return "its evidence is not a sentence of the cited passage"
    if draft.type == "true_false":
        statement = normalize(draft.question.removeprefix(TF_PREFIX))
        if draft.answer == "True" and statement not in text:
            return "a 'True' statement that the passage does not state"
        if draft.answer == "False" and statement in everything:
            return "a 'False' statement that the text states"
        return None
    if BLANK not in draft.question:
        return _unblanked_problem(draft, evidence, everything)
    stem = draft.question.split('"', 1)[-1].rstrip('"')
    if normalize(stem.replace(BLANK, draft.answer)) != evidence:
        return "the answer does not complete the sentence of the passage"
    for option in draft.options:
        filled = normalize(stem.replace(BLANK, option))
        if normalize(option) != normalize(draft.answer) and filled in everything:
            return f"option {option!r} is also correct according to the text"
    return None


def flaw_context(task: QuestionTask) -> FlawContext:
    """The titles (the request's, the document's top headings) and texts the rules compare with."""
    titles = [task.title, *sorted({p.headings[0] for p in task.passages if p.headings})]
    return FlawContext(titles=[t for t in titles if t], passages=[p.text for p in task.passages])


def flaws_of(draft: Draft, task: QuestionTask) -> list[Flaw]:
    return find_flaws(draft, flaw_context(task))


def _unblanked_problem(draft: Draft, evidence: str, everything: str) -> str | None:
    """The key is in the evidence; when the key is a whole sentence, no other option is one too."""
    if normalize(draft.answer) not in evidence:
        return "the answer is not in the evidence"
    if normalize(draft.answer) == evidence:
        for option in draft.options:
            if normalize(option) != evidence and normalize(option) in everything:
                return f"option {option!r} is also a statement of the text"
    return None


def to_question(draft: Draft, task: QuestionTask, number: int, quality: Quality | None = None) -> Question:
    passage = task.passage(draft.passage_id)
    return Question(id=f"q{number}", type=draft.type, question=draft.question, options=draft.options,
                    answer=draft.answer, passage_id=draft.passage_id,
                    headings=passage.headings if passage else [], evidence=draft.evidence,
                    bloom_level=quality.bloom_level if quality else draft.bloom_level, quality=quality)


def pick_final(accepted: list[Question], count: int, types: list[QuestionType],
               mix: dict[BloomLevel, float] | None = None) -> list[Question]:
    """``count`` questions (or all there are), renumbered.

    With a Bloom ``mix``, each level's share is filled first (balanced across types within the
    level), then any gap with the other questions; without one, balanced across the types.
    """
    picked: list[Question] = []
    if mix:
        for level, wanted in targets(mix, count).items():
            picked += _balanced([q for q in accepted if q.bloom_level == level], wanted, types)
    rest = [q for q in accepted if q not in picked]
    picked += _balanced(rest, count - len(picked), types)
    return [q.model_copy(update={"id": f"q{i + 1}"}) for i, q in enumerate(picked)]


def _balanced(questions: list[Question], count: int, types: list[QuestionType]) -> list[Question]:
    by_type = {t: [q for q in questions if q.type == t] for t in types}
    picked: list[Question] = []
    while len(picked) < count and any(by_type.values()):
        for qtype in types:
            if by_type[qtype] and len(picked) < count:
                picked.append(by_type[qtype].pop(0))
    return picked
