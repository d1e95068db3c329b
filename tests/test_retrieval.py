"""Retrieval: passages follow the document's structure; BM25 with a topic, coverage without."""

from __future__ import annotations

from pathlib import Path

from gabay.questions.retrieval import MAX_PASSAGE_CHARS, select_passages, split_passages

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "documents"

DOCUMENT = """# Volcanoes

Volcanoes are openings in the crust of the Earth through which magma reaches the surface.

## Types

Shield volcanoes have gentle slopes built from runny basalt lava flows.

Stratovolcanoes are steep cones made of alternating layers of ash and sticky lava.

- cinder cones are small
- they form quickly

## Eruptions

### Explosive eruptions

Gas trapped in sticky magma makes explosive eruptions that throw ash high into the sky.

## Monitoring

Scientists measure earthquakes, ground swelling and gas emissions to forecast eruptions.
"""


def test_passages_follow_headings_and_paragraphs() -> None:
    passages = split_passages(DOCUMENT)

    assert [p.id for p in passages] == ["p1", "p2", "p3", "p4", "p5", "p6"]
    assert passages[0].headings == ["Volcanoes"]
    assert passages[1].headings == ["Volcanoes", "Types"]
    assert passages[3].text == "- cinder cones are small - they form quickly"
    assert passages[4].headings == ["Volcanoes", "Eruptions", "Explosive eruptions"]
    assert passages[5].headings == ["Volcanoes", "Monitoring"]
    assert "Gas trapped" in passages[4].text


def test_a_long_paragraph_is_cut_at_sentence_ends() -> None:
    sentence = "The quick brown fox jumps over the lazy dog again and again. "
    passages = split_passages(sentence * 60)

    assert len(passages) > 1
    assert all(len(p.text) <= MAX_PASSAGE_CHARS for p in passages)
    assert all(p.text.endswith(".") for p in passages)
    assert " ".join(p.text for p in passages) == (sentence * 60).strip()


def test_a_topic_ranks_the_matching_passages_first_with_bm25() -> None:
    passages = split_passages(DOCUMENT)
    chosen = select_passages(passages, "forecast earthquakes gas emissions", count=2)

    assert chosen[0].headings[-1] == "Monitoring"
    assert len(chosen) >= 2


def test_a_topic_that_matches_nothing_falls_back_to_coverage() -> None:
    passages = split_passages(DOCUMENT)
    assert select_passages(passages, "photosynthesis", count=4) == select_passages(passages, None, count=4)


def test_without_a_topic_the_picks_spread_over_the_sections() -> None:
    passages = split_passages((EXAMPLES / "photosynthesis.md").read_text())
    chosen = select_passages(passages, None, count=5)

    sections = {p.headings[1] if len(p.headings) > 1 else "" for p in chosen}
    assert len(chosen) == 5
    assert len(sections) == 5  # five different sections, not five paragraphs of one
    assert chosen == sorted(chosen, key=lambda p: int(p.id[1:]))  # document order


def test_selection_never_exceeds_the_document() -> None:
    passages = split_passages("# Tiny\n\nOne short paragraph about the moon and its phases.\n")
    assert [p.id for p in select_passages(passages, None, count=50)] == ["p1"]
    assert [p.id for p in select_passages(passages, "moon", count=50)] == ["p1"]
