"""How a typed answer is read before it is compared: text, numbers, true/false, chosen options.

Pure functions without gabay imports. The text rule is the one a teacher applies reading an
answer: Unicode compatibility forms (NFKC: full-width letters, ligatures, non-breaking spaces),
case, accents, spacing and punctuation do not matter; letters and digits do.
"""

from __future__ import annotations

import math
import re
import unicodedata
from fractions import Fraction

#: Answers read as True / False (after :func:`normalize_text`): English and Tagalog.
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "tama", "totoo", "oo", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "mali", "hindi", "di totoo", "0"})

#: Separators of several chosen options in one text answer (a comma only when these are absent).
_CHOICE_SEPARATORS = re.compile(r"\s*(?:\n|;|\|)\s*")
_APOSTROPHES = frozenset("'\u2019\u02bc")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?")
_FRACTION = re.compile(r"([+-]?\d+)/(\d+)")


def normalize_text(text: str | None) -> str:
    """NFKC, case-folded, accents removed, punctuation and symbols as spaces, spacing collapsed.

    ``"  Thylakoid   MEMBRANES. "`` and ``"thylakoid membranes"`` are equal; so are
    ``"Ｏｘíｇｅｎｏ"`` and ``"oxigeno"``, and ``"Calvin-cycle"`` and ``"calvin cycle"``.
    """
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    decomposed = unicodedata.normalize("NFKD", folded)
    kept = []
    for char in decomposed:
        category = unicodedata.category(char)
        if category.startswith("M"):  # combining accents
            continue
        if char in _APOSTROPHES:  # "don't" = "dont"
            continue
        kept.append(" " if category[0] in "PSZC" else char)
    return " ".join("".join(kept).split())


def parse_number(text: str | None) -> float | None:
    """A decimal number (``-3.5``, ``4.3e2``, ``1,250.5``, ``3,5``) or a fraction (``3/4``); else None.

    Spaces and underscores are ignored. A comma is a thousands separator when a dot is also
    present or when it is followed by exactly three digits (``1,250``); otherwise it is the
    decimal comma (``3,5`` = 3.5). Infinite and NaN values are not numbers here.
    """
    raw = unicodedata.normalize("NFKC", text or "").strip().lower()
    raw = re.sub(r"[\s_]", "", raw)
    if not raw:
        return None
    fraction = _FRACTION.fullmatch(raw)
    if fraction:
        denominator = int(fraction.group(2))
        return float(Fraction(int(fraction.group(1)), denominator)) if denominator else None
    if "," in raw:
        thousands = "." in raw or re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+", raw) is not None
        raw = raw.replace(",", "") if thousands else raw.replace(",", ".", 1)
    if not _NUMBER.fullmatch(raw):
        return None
    value = float(raw)
    return value if math.isfinite(value) else None


def parse_bool(text: str | None) -> bool | None:
    """``True``/``False`` from a true/false answer (English or Tagalog words, ``t``/``f``); else None."""
    word = normalize_text(text)
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def split_choices(text: str, options: list[str]) -> list[str]:
    """The pieces of a text answer naming several options.

    A newline, ``;`` or ``|`` separates options. Without any of these the answer is split at
    commas, and neighbouring pieces are joined again when together they name an option (an option
    may itself hold a comma, as ``"Yes, always"``).
    """
    if normalize_text(text) in {normalize_text(o) for o in options}:
        return [text]
    pieces = [p for p in _CHOICE_SEPARATORS.split(text.strip()) if p.strip()]
    if len(pieces) > 1:
        return pieces
    return _join_commas([p for p in text.split(",") if p.strip()], {normalize_text(o) for o in options})


def _join_commas(pieces: list[str], names: set[str]) -> list[str]:
    """Greedy from the left: the longest run of comma pieces that names an option, else one piece."""
    result: list[str] = []
    start = 0
    while start < len(pieces):
        end = len(pieces)
        while end > start + 1 and normalize_text(",".join(pieces[start:end])) not in names:
            end -= 1
        result.append(",".join(pieces[start:end]))
        start = end
    return result
