"""How close two key terms are in a text: the words around them, and the slot they fill.

Two terms used in similar contexts ("the stroma", "the thylakoid membranes", both after "in the")
make hard distractors for each other; terms that never share a neighbour make easy ones. The
offline writer picks distractors by this closeness according to the requested difficulty.
"""

from __future__ import annotations

import re
from collections import defaultdict

from gabay.questions.offline.terms import Term
from gabay.questions.retrieval import STOPWORDS

WINDOW = 3


class Contexts:
    """The neighbour words and the preceding word of every key term, over the given texts."""

    def __init__(self, texts: list[str], terms: list[Term]) -> None:
        self.near: dict[str, set[str]] = defaultdict(set)
        self.before: dict[str, set[str]] = defaultdict(set)
        self.after: dict[str, set[str]] = defaultdict(set)
        joined = "\n".join(texts)
        for term in terms:
            pattern = rf"(?<![\w-]){re.escape(term.text)}(?![\w-])"
            for match in re.finditer(pattern, joined, flags=re.IGNORECASE):
                left = re.findall(r"[\w-]+", joined[max(0, match.start() - 80):match.start()])
                right = re.findall(r"[\w-]+", joined[match.end():match.end() + 80])
                key = term.text.casefold()
                if left:
                    self.before[key].add(left[-1].casefold())
                if right:
                    self.after[key].add(right[0].casefold())
                for word in left[-WINDOW:] + right[:WINDOW]:
                    if word.casefold() not in STOPWORDS:
                        self.near[key].add(word.casefold())

    def closeness(self, first: str, second: str) -> float:
        """0 (nothing in common) to 1 (same neighbours): Jaccard of the neighbour words."""
        a, b = self.near.get(first.casefold(), set()), self.near.get(second.casefold(), set())
        return len(a & b) / len(a | b) if a | b else 0.0

    def fits_slot(self, candidate: str, preceding: str) -> bool:
        """The candidate is used somewhere after the same word (``the``, ``in``) as the slot."""
        return not preceding or preceding in self.before.get(candidate.casefold(), set())

    def agrees(self, candidate: str, following: str) -> bool:
        """Before a verb that shows number ("are", "was"), the candidate is used with that verb too."""
        return following not in AGREEING or following in self.after.get(candidate.casefold(), set())


#: Verbs whose form shows the number of their subject.
AGREEING = frozenset({"is", "are", "was", "were", "has", "have", "contains", "contain", "does", "do"})


def distractor_closeness(texts: list[str], terms: list[Term], answer: str, options: list[str]) -> float:
    """Mean closeness of a multiple-choice item's distractors to its key (what difficulty changes)."""
    contexts = Contexts(texts, terms)
    wrong = [o for o in options if o.casefold() != answer.casefold()]
    return sum(contexts.closeness(answer, o) for o in wrong) / len(wrong) if wrong else 0.0
