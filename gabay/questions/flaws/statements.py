"""Rules on blanks and statements: what is blanked out, and statements copied word for word."""

from __future__ import annotations

from gabay.questions.flaws.stems import statement_of
from gabay.questions.flaws.text import BLANK_RE, content_words, quoted
from gabay.questions.models import Draft, normalize
from gabay.questions.retrieval import STOPWORDS


def blank_is_title_or_stop_word(draft: Draft, titles: list[str]) -> str | None:
    """A blank whose answer is the document's title (or a stop word) asks nothing."""
    if draft.type == "true_false" or not BLANK_RE.search(draft.question):
        return None
    answer = normalize(draft.answer)
    if not answer or answer in STOPWORDS or all(w in STOPWORDS for w in answer.split()):
        return f"the blank is the stop word {draft.answer!r}"
    if is_title(draft.answer, titles):
        return f"the blank is the document's title {draft.answer!r}"
    return None


def is_title(text: str, titles: list[str]) -> bool:
    """``text`` is a title, or the main part of one ("Philippine Revolution" of "The Philippine
    Revolution of 1896": at least half its words and two or more, in a row)."""
    words = normalize(text)
    for title in titles:
        title_words = [w for w in normalize(title).split() if w not in ("the", "a", "an")]
        size = len(words.split())
        if words and f" {words} " in f" {' '.join(title_words)} " and (
                size * 2 >= len(title_words) and (size > 1 or len(title_words) == 1)):
            return True
    return False


def copied_verbatim(draft: Draft, passages: list[str]) -> str | None:
    """A short-answer or true/false "question" that is a whole sentence of the text, unchanged.

    A "True" statement copied as it is tests recognition of a string, not of an idea; a long one
    (over 25 words) is flagged, a short one passes (rote facts are fair at the remember level).
    """
    if draft.type != "true_false":
        return None
    statement = normalize(statement_of(draft))
    if len(statement.split()) > 25 and any(statement in normalize(p) for p in passages):
        return "a long true/false statement copied verbatim from the text"
    return None


def blank_without_context(draft: Draft) -> str | None:
    """A sentence to complete that keeps fewer than three content words besides the blank."""
    sentence = quoted(draft.question)
    if not sentence or not BLANK_RE.search(sentence):
        return None
    if len(content_words(BLANK_RE.sub(" ", sentence))) < 3:
        return "the sentence around the blank says too little to be answered"
    return None


_PRONOUNS = frozenset({"it", "its", "he", "she", "his", "her", "they", "their", "these", "this", "those",
                       "them", "him"})


def dangling_pronoun(draft: Draft) -> str | None:
    """A statement or sentence to complete that opens with a pronoun: "It began in 1896"."""
    sentence = statement_of(draft) if draft.type == "true_false" else quoted(draft.question)
    first = normalize(sentence).split()[:1]
    if first and first[0] in _PRONOUNS:
        return f"the sentence opens with {first[0]!r}, which refers to something outside it"
    return None
