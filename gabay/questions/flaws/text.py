"""Small text helpers the rules share: content words, the stem outside quotes, option kinds."""

from __future__ import annotations

import re

from gabay.questions.models import normalize
from gabay.questions.retrieval import STOPWORDS

BLANK_RE = re.compile(r"_{3,}")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december")
#: Lower-case words that may sit inside a name ("Pact of Biak-na-Bato", "Anak ng Bayan").
MAX_NAME_WORDS = 5
NAME_LINKS = frozenset({"of", "ng", "de", "na", "the", "and", "del", "y", "sa", "mga"})


def content_words(text: str) -> set[str]:
    """Normalised words of four letters or more that are not stop words."""
    return {w for w in normalize(text).split() if len(w) >= 4 and w not in STOPWORDS}


def quoted(text: str) -> str:
    """The part of a stem inside double quotes (the sentence to complete), or ''."""
    match = re.search(r"[\"\u201c](.+)[\"\u201d]", text)
    return match.group(1) if match else ""


def unquoted(text: str) -> str:
    """The stem without its quoted sentence: the words the item writer chose."""
    return re.sub(r"[\"\u201c].+[\"\u201d]", " ", text)


def kind_of(option: str) -> str:
    """year | date | number | name | phrase: options of different kinds are easy to rule out."""
    text = option.strip()
    words = re.findall(r"[\w-]+", text)
    lowered = text.casefold()
    if len(words) > MAX_NAME_WORDS:
        return "phrase"
    if re.fullmatch(r"1[5-9]\d\d|20\d\d", text):
        return "year"
    if any(m in lowered.split() for m in MONTHS) and re.search(r"\d", text):
        return "date"
    if re.fullmatch(r"[\d.,%\s-]+", text):
        return "number"
    if words and all(w[:1].isupper() or w.casefold() in NAME_LINKS for w in words) and words[0][:1].isupper():
        return "name"
    return "phrase"
