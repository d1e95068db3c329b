"""Item-writing-flaw rules: one hand-labelled bad item per rule is caught by that rule; good items pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from gabay.questions.flaws import RULES, FlawContext, find_flaws
from gabay.questions.models import Draft, QuestionType
from gabay.questions.offline.drafts import generate_drafts
from tests.test_offline_questions import DOCUMENTS, task_for

PASSAGE = ("Plants, algae and some bacteria make their own food through a process called photosynthesis. "
           "Gases enter and leave the leaf through small pores called stomata, which are usually found "
           "on the underside of the leaf. By the late nineteenth century, many Filipinos resented heavy "
           "taxes, forced labour and the power of the friars, the Spanish religious orders that owned "
           "large estates and collected rents from the farmers.")
CONTEXT = FlawContext(titles=["Photosynthesis"], passages=[PASSAGE])


def item(question: str, answer: str, options: list[str] | None = None,
         qtype: QuestionType | None = None) -> Draft:
    kind: QuestionType = qtype or ("multiple_choice" if options else "short_answer")
    return Draft(id="d1", type=kind, question=question, options=options or [], answer=answer,
                 passage_id="p1")


#: rule -> a bad item it must catch (hand-labelled, one per rule).
BAD_ITEMS: dict[str, Draft] = {
    "longest_answer": item("Which best describes stomata?", "small pores on the underside of the leaf",
                           ["roots", "a stem", "the seeds", "small pores on the underside of the leaf"]),
    "catch_all_option": item("Which gases pass through stomata?", "All of the above",
                             ["oxygen", "carbon dioxide", "water vapour", "All of the above"]),
    "overlapping_options": item("Where are stomata usually found?", "the underside of the leaf",
                                ["the underside of the leaf", "underside of the leaf", "the stem", "roots"]),
    "grammatical_cue": item("Photosynthesis is a _____ that plants use to make food.", "process",
                            ["process", "organelle", "enzyme", "atmosphere"]),
    "answer_repeats_stem": item("Which pores let gases enter and leave the leaf?", "leaf pores",
                                ["root hairs", "xylem vessels", "leaf pores", "seed coats"]),
    "implausible_distractor": item("Which substance is split in photolysis?", "water",
                                   ["water", "1896", "Andres Bonifacio", "glucose"]),
    "unemphasised_negative": item("Which of these is not a product of photosynthesis?", "water",
                                  ["water", "glucose", "oxygen", "sugar"]),
    "not_a_question": item("Stomata and the leaf", "pores"),
    "blank_is_title_or_stop_word": item('Fill in the blank: "Plants make food through a process called '
                                        '_____."', "photosynthesis"),
    "blank_without_context": item('Fill in the blank: "The products are _____."', "glucose"),
    "copied_verbatim": item("True or false: By the late nineteenth century, many Filipinos resented heavy "
                            "taxes, forced labour and the power of the friars, the Spanish religious orders "
                            "that owned large estates and collected rents from the farmers.", "True",
                            qtype="true_false"),
    "dangling_pronoun": item('Fill in the blank: "It is usually found on the _____ of the leaf."',
                             "underside"),
}

GOOD_ITEMS = [
    item("Which pores let gases enter and leave a plant?", "stomata",
         ["stomata", "xylem", "phloem", "cuticle"]),
    item('Which term best completes the sentence? "Gases enter and leave the leaf through small pores '
         'called _____, which are usually found on the underside of the leaf."', "stomata",
         ["stomata", "thylakoids", "chloroplasts", "aquifers"]),
    item("True or false: Gases enter and leave the leaf through small pores.", "True", qtype="true_false"),
    item("Which of these is NOT a product of photosynthesis?", "water",
         ["water", "glucose", "oxygen", "sugar"]),
    item("What are the small pores of a leaf called?", "stomata"),
    item("In which year did the revolution begin?", "1896", ["1896", "1892", "1898", "1897"]),
]


def test_every_rule_has_a_hand_labelled_bad_item() -> None:
    assert set(BAD_ITEMS) == set(RULES)


@pytest.mark.parametrize("rule", sorted(BAD_ITEMS))
def test_each_bad_item_is_caught_by_its_rule(rule: str) -> None:
    found = find_flaws(BAD_ITEMS[rule], CONTEXT)
    assert rule in {f.rule for f in found}, [str(f) for f in found]


@pytest.mark.parametrize("good", GOOD_ITEMS, ids=lambda d: d.question[:40])
def test_well_written_items_pass_every_rule(good: Draft) -> None:
    assert find_flaws(good, CONTEXT) == []


def test_a_flaw_names_its_rule_and_says_what_is_wrong() -> None:
    [flaw] = [f for f in find_flaws(BAD_ITEMS["catch_all_option"], CONTEXT)]
    assert str(flaw) == "catch_all_option: catch-all option 'All of the above'"


def test_the_main_part_of_a_long_title_counts_as_the_title() -> None:
    context = FlawContext(titles=["The Philippine Revolution of 1896"])
    blank = item('Fill in the blank: "The _____ was the armed struggle of Filipinos against Spain."',
                 "Philippine Revolution")
    assert [f.rule for f in find_flaws(blank, context)] == ["blank_is_title_or_stop_word"]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.stem)
@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_the_offline_writer_passes_its_own_rules(path: Path, difficulty: str) -> None:
    task = task_for(path, count=10, difficulty=difficulty)
    title = path.read_text().splitlines()[0].lstrip("# ")
    task = task.model_copy(update={"title": title})
    drafts = generate_drafts(task, 17)
    context = FlawContext(titles=[title], passages=[p.text for p in task.passages])

    assert len(drafts) >= 10
    assert {d.id: [str(f) for f in find_flaws(d, context)] for d in drafts} == {d.id: [] for d in drafts}


def test_weak_distractors_seen_on_main_are_caught() -> None:
    weak = item('Which term best completes the sentence? "The light-independent reactions, also called the '
                '_____, take place in the stroma."', "Calvin cycle",
                ["light", "green", "RuBP", "Calvin cycle"])
    assert "implausible_distractor" in {f.rule for f in find_flaws(weak, CONTEXT)}


def test_offline_false_statements_swap_in_a_term_that_fits_the_same_slot() -> None:
    """"... signed the Pampanga" came from swapping a treaty for a province: never again."""
    import re

    for path in DOCUMENTS:
        text = path.read_text()
        for difficulty in ("easy", "medium", "hard"):
            task = task_for(path, count=10, question_types=["true_false"], difficulty=difficulty)
            for draft in generate_drafts(task, 12):
                if draft.answer != "False":
                    continue
                statement = draft.question.removeprefix("True or false: ").split()
                original = draft.evidence.split()
                head = next(i for i, (a, b) in enumerate(zip(statement, original, strict=False)) if a != b)
                tail = next(i for i, (a, b) in enumerate(zip(statement[::-1], original[::-1], strict=False))
                            if a != b)
                swapped_in = " ".join(statement[head:len(statement) - tail]).strip(".,;")
                assert head > 0, statement
                slot = rf"\b{re.escape(statement[head - 1])}\s+{re.escape(swapped_in)}(?![\w-])"
                assert swapped_in.isdigit() or re.search(slot, text, flags=re.IGNORECASE), statement
