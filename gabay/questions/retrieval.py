"""Retrieval: split a document along its structure and pick the passages to ask about.

Passages follow Markdown headings and paragraphs (list items stay with their paragraph; very long
paragraphs are cut at sentence ends). With a topic, passages are ranked with BM25 (``rank_bm25``)
against it; without one, the picks spread over the document's sections, the most informative
paragraph of each section first.
"""

from __future__ import annotations

import importlib
import re

from gabay.questions.models import Passage

MAX_PASSAGE_CHARS = 1200
MIN_PASSAGE_CHARS = 40
MAX_SELECTED_CHARS = 12_000
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "been", "by", "can", "do", "does", "for", "from",
    "had", "has", "have", "he", "her", "his", "how", "in", "into", "is", "it", "its", "of",
    "on", "or", "she", "so", "than", "that", "the", "their", "them", "then", "there", "these",
    "they", "this", "those", "to", "was", "were", "what", "when", "where", "which", "while",
    "who", "why", "will", "with", "would", "also", "not", "but", "about", "after", "before"
})


def tokenize(text: str) -> list[str]:
    """Lower-case words without stop words (any script)."""
    return [w for w in re.findall(r"\w+", text.casefold()) if w not in STOPWORDS and not w.isdigit()]


def split_passages(text: str) -> list[Passage]:
    """The document's paragraphs in order, each with an id (``p1``...) and its heading path."""
    passages: list[Passage] = []
    headings: list[tuple[int, str]] = []
    block: list[str] = []

    def flush() -> None:
        paragraph = " ".join(line.strip() for line in block).strip()
        block.clear()
        for piece in _cut(paragraph):
            passages.append(Passage(id=f"p{len(passages) + 1}", headings=[h for _, h in headings],
                                    text=piece))

    for line in text.replace("\r\n", "\n").split("\n"):
        match = _HEADING.match(line)
        if match:
            flush()
            level = len(match.group(1))
            headings[:] = [h for h in headings if h[0] < level] + [(level, match.group(2))]
        elif not line.strip() or line.strip().startswith("```"):
            flush()
        else:
            block.append(line)
    flush()
    return passages


def _cut(paragraph: str) -> list[str]:
    """A paragraph, or pieces of it at sentence ends when it is too long."""
    if not paragraph:
        return []
    if len(paragraph) <= MAX_PASSAGE_CHARS:
        return [paragraph]
    pieces, current = [], ""
    for sentence in _SENTENCE_END.split(paragraph):
        if current and len(current) + len(sentence) + 1 > MAX_PASSAGE_CHARS:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    return [*pieces, current] if current else pieces


def informativeness(passage: Passage) -> float:
    """How much a passage has to ask about: distinct content words, sentences, definitions."""
    words = tokenize(passage.text)
    sentences = len(_SENTENCE_END.split(passage.text))
    definitions = len(re.findall(r"\b(called|known as|is defined as|means|refers to)\b", passage.text))
    return len(set(words)) + 3 * min(sentences, 6) + 5 * definitions


def select_passages(passages: list[Passage], topic: str | None, count: int) -> list[Passage]:
    """The passages to generate ``count`` questions from.

    With a topic: the passages that match it, best first, topped up with covering passages only
    when too few match. Without: passages spread over the sections, in document order.
    """
    useful = [p for p in passages if len(p.text) >= MIN_PASSAGE_CHARS] or passages
    wanted = min(len(useful), max(4, count))
    ranked = _by_topic(useful, topic) if topic else []
    if topic and ranked:
        enough = min(len(useful), max(2, (count + 2) // 3))
        fill = [p for p in _by_coverage(useful) if p not in ranked]
        return _cap(ranked + fill[: max(0, enough - len(ranked))], wanted)
    order = {p.id: i for i, p in enumerate(passages)}
    return sorted(_cap(_by_coverage(useful), wanted), key=lambda p: order[p.id])


def _cap(ranked: list[Passage], wanted: int) -> list[Passage]:
    """The first ``wanted`` passages that fit in MAX_SELECTED_CHARS (at least one)."""
    chosen: list[Passage] = []
    size = 0
    for passage in ranked:
        if len(chosen) >= wanted or (chosen and size + len(passage.text) > MAX_SELECTED_CHARS):
            break
        chosen.append(passage)
        size += len(passage.text)
    return chosen


def _by_topic(passages: list[Passage], topic: str) -> list[Passage]:
    """Passages that match the topic (BM25 score > 0), best first."""
    query = tokenize(topic)
    corpus = [tokenize(" ".join([*p.headings, p.text])) or ["_"] for p in passages]
    if not query:
        return []
    scores = importlib.import_module("rank_bm25").BM25Okapi(corpus).get_scores(query)  # numpy: lazily
    ranked = sorted(range(len(passages)), key=lambda i: (-scores[i], i))
    return [passages[i] for i in ranked if scores[i] > 0]


def _by_coverage(passages: list[Passage]) -> list[Passage]:
    """Round-robin over sections (top-level heading path), most informative paragraph first."""
    sections: dict[tuple[str, ...], list[Passage]] = {}
    for passage in passages:
        sections.setdefault(tuple(passage.headings[:2]), []).append(passage)
    queues = [sorted(group, key=lambda p: -informativeness(p)) for group in sections.values()]
    picked: list[Passage] = []
    while any(queues):
        for queue in queues:
            if queue:
                picked.append(queue.pop(0))
    return picked
