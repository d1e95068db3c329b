"""The offline provider: real, extractive, deterministic questions that the source supports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from gabay.errors import InvalidInput
from gabay.jobs import JobStore
from gabay.questions.checks import source_problem, structural_problem
from gabay.questions.models import Draft, QuestionTask, normalize, parse_request
from gabay.questions.offline.drafts import BLANK, TF_PREFIX, generate_drafts
from gabay.questions.offline.terms import key_terms
from gabay.questions.retrieval import select_passages, split_passages
from gabay.questions.stages import QuestionStages
from gabay.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted((ROOT / "examples" / "documents").glob("*.md"))


def task_for(path: Path, count: int = 10, **request: object) -> QuestionTask:
    parsed = parse_request({"document": {"id": path.stem, "title": path.stem, "text": path.read_text()},
                            "count": count, **request})
    passages = select_passages(split_passages(parsed.document.text), parsed.topic, parsed.count)
    return QuestionTask.from_request("job", parsed, passages)


def filled(draft: Draft) -> str:
    stem = draft.question.split('"', 1)[1].rstrip('"')
    return normalize(stem.replace(BLANK, draft.answer))


def supported_by(draft: Draft, document: str) -> bool:
    """The answer key checked against the document text, independently of the validator."""
    text = normalize(document)
    if normalize(draft.evidence) not in text:
        return False
    if draft.type == "true_false":
        statement = normalize(draft.question.removeprefix(TF_PREFIX))
        return (statement in text) == (draft.answer == "True")
    if BLANK in draft.question:
        return filled(draft) in text
    return normalize(draft.answer) in normalize(draft.evidence)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.stem)
def test_every_answer_is_supported_by_the_document_and_nothing_repeats(path: Path) -> None:
    task = task_for(path, count=10)
    drafts = generate_drafts(task, 17)

    assert len(drafts) >= 10
    assert {d.type for d in drafts} == {"multiple_choice", "true_false", "short_answer"}
    for draft in drafts:
        assert supported_by(draft, path.read_text()), draft
        assert structural_problem(draft, task) is None, draft
        assert source_problem(draft, task) is None, draft
    questions = [normalize(d.question) for d in drafts]
    assert len(set(questions)) == len(questions)
    assert len({normalize(d.evidence) for d in drafts}) == len(drafts)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.stem)
def test_multiple_choice_has_one_correct_option_among_distinct_options(path: Path) -> None:
    text = normalize(path.read_text())
    drafts = generate_drafts(task_for(path, question_types=["multiple_choice"]), 8)

    assert len(drafts) >= 5
    for draft in drafts:
        assert len(draft.options) == 4 or (len(draft.options) == 3 and BLANK not in draft.question)
        assert len({normalize(o) for o in draft.options}) == len(draft.options)
        assert [normalize(o) for o in draft.options].count(normalize(draft.answer)) == 1
        if BLANK not in draft.question:  # above recall (understand, analyse): checked against the text
            assert source_problem(draft, task_for(path)) is None
            continue
        stem = draft.question.split('"', 1)[1].rstrip('"')
        correct = [o for o in draft.options if normalize(stem.replace(BLANK, o)) in text]
        assert correct == [draft.answer]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.stem)
def test_distractors_are_of_the_same_kind_as_the_answer(path: Path) -> None:
    task = task_for(path, question_types=["multiple_choice"], count=20)
    family = {t.text.casefold(): t.family for t in key_terms([p.text for p in task.passages])}
    drafts = generate_drafts(task, 40)

    for draft in (d for d in drafts if BLANK in d.question):  # recall items blank a key term
        kind = family[draft.answer.casefold()]
        if sum(1 for f in family.values() if f == kind) >= 8:  # plenty of its kind to choose from
            assert {family.get(o.casefold(), "year" if o.isdigit() else "?") for o in draft.options} == {kind}


def test_true_false_mixes_true_and_false_statements() -> None:
    tasks = [task_for(path, question_types=["true_false"]) for path in DOCUMENTS]
    drafts = [d for task in tasks for d in generate_drafts(task, 8)]
    assert {d.answer for d in drafts} == {"True", "False"}


def test_definitions_become_short_answer_questions() -> None:
    drafts = generate_drafts(task_for(DOCUMENTS[2], question_types=["short_answer"], count=15), 20)
    asked = {d.question: d.answer for d in drafts}
    assert asked.get("What is another name for the water cycle?") == "hydrologic cycle"


def test_the_same_input_gives_the_same_questions_in_any_process() -> None:
    script = (
        "import json, sys; sys.path.insert(0, '.');"
        "from tests.test_offline_questions import DOCUMENTS, task_for;"
        "from gabay.questions.offline.drafts import generate_drafts;"
        "print(json.dumps([[d.model_dump() for d in generate_drafts(task_for(p), 17)] for p in DOCUMENTS]))"
    )
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                             text=True, check=True)
        outputs.append(json.loads(run.stdout))
    here = [[d.model_dump() for d in generate_drafts(task_for(p), 17)] for p in DOCUMENTS]
    assert outputs[0] == outputs[1] == here


def test_the_source_check_rejects_unsupported_drafts() -> None:
    task = task_for(DOCUMENTS[1])
    good = next(d for d in generate_drafts(task, 17) if d.type == "multiple_choice")
    wrong_option = next(o for o in good.options if o != good.answer)

    wrong_key = good.model_copy(update={"answer": wrong_option})
    invented = good.model_copy(update={"evidence": "Plants photosynthesise at night only."})
    false_true = Draft(id="x", type="true_false", question=TF_PREFIX + "Leaves look red.", answer="True",
                       passage_id=good.passage_id, evidence=good.evidence)
    assert source_problem(good, task) is None
    assert source_problem(wrong_key, task) == "the answer does not complete the sentence of the passage"
    assert source_problem(invented, task) == "its evidence is not a sentence of the cited passage"
    assert source_problem(false_true, task) == "a 'True' statement that the passage does not state"


def test_offline_stages_fill_a_gap_in_a_second_round_or_explain_the_shortfall(
        redis_client: redis.Redis, settings: Settings) -> None:
    store = JobStore(redis_client, settings)
    stages = QuestionStages(store, settings)
    store.create("questions", "job")
    text = "# Tiny\n\nThe Moon orbits the Earth once in about 27 days, a period called the sidereal month.\n"
    request = parse_request({"document": {"id": "tiny", "title": "Tiny", "text": text}, "count": 6})

    task = stages.validate(stages.draft(stages.retrieve("job", request)))
    assert stages.needs_another_round(task)
    task = stages.validate(stages.draft(task.model_copy(update={"round": 2})))
    result = stages.result(task)

    assert not stages.needs_another_round(task)
    assert 0 < len(result.questions) < 6
    assert result.shortfall is not None and result.shortfall.startswith(f"only {len(result.questions)} of 6")
    record = store.get("job")
    assert set(record.stages) == {"retrieval", "generation", "validation", "generation-2", "validation-2"}
    assert {(c.provider, c.model, c.cost_usd) for c in record.calls} == {("offline", "extractive-v1", 0.0)}


def test_a_bad_request_names_every_problem_by_its_path_on_one_line() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_request({"document": {"id": "d", "text": " "}, "count": 0, "extra": 1})
    assert str(raised.value) == (
        "invalid question request: document.text: document text is empty; "
        "count: Input should be greater than or equal to 1; extra: Extra inputs are not permitted"
    )
    with pytest.raises(InvalidInput, match=r"^invalid question request: request: Input should be a valid"):
        parse_request([1])
