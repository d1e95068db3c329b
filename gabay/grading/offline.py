"""A deterministic rubric grader without any model: key-term coverage, always for the teacher to confirm.

The key terms are the content words (3+ letters, not common function words) of the rubric's
reference answers, or of its criteria when there are none. Points are the share of key terms the
answer contains times ``max_points``, rounded to a quarter point; the confidence is fixed at
:data:`OFFLINE_CONFIDENCE` (0.5), under the default review threshold (0.7), so its points are a
suggestion to the teacher unless the key lowers the threshold.
"""

from __future__ import annotations

from gabay.grading.llm import LLMVerdict, Rubric
from gabay.grading.normalize import normalize_text

OFFLINE_CONFIDENCE = 0.5
_STOP_WORDS = frozenset({
    "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her", "was", "one",
    "our", "out", "has", "his", "how", "its", "may", "new", "now", "see", "two", "who", "did", "get",
    "let", "put", "say", "she", "too", "use", "with", "from", "that", "this", "they", "will", "have",
    "what", "when", "where", "which", "their", "there", "than", "then", "them", "these", "those",
    "into", "also", "more", "most", "such", "only", "some", "very", "ang", "mga", "ito", "iyon", "siya",
    "sila", "kami", "tayo", "ating", "nang", "para", "kung", "dahil",
})


def key_terms(text: str) -> list[str]:
    """The distinct content words of ``text`` in order of first appearance."""
    seen: dict[str, None] = {}
    for word in normalize_text(text).split():
        if len(word) >= 3 and word not in _STOP_WORDS and not word.isdigit():
            seen.setdefault(word, None)
    return list(seen)


class KeywordGrader:
    """Offline :class:`gabay.grading.llm.LLMGrader`: same rubric and answer, same verdict."""

    def grade(self, rubric: Rubric, answer: str) -> LLMVerdict:
        terms = key_terms(" ".join(rubric.reference_answers) or rubric.criteria)
        if not terms:
            return LLMVerdict(0.0, 0.0, "the rubric names no key terms to look for")
        words = set(normalize_text(answer).split())
        found = [t for t in terms if t in words]
        points = round(rubric.max_points * len(found) / len(terms) * 4) / 4
        rationale = (f"mentions {len(found)} of {len(terms)} key terms"
                     + (f" ({', '.join(found)})" if found else ""))
        return LLMVerdict(points, OFFLINE_CONFIDENCE, rationale)
