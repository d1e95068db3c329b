"""Bloom's levels: the tagger, the request's mix, and offline difficulty that changes something measurable."""

from __future__ import annotations

from statistics import mean

import pytest
import redis

from gabay.errors import InvalidInput
from gabay.jobs import JobStore
from gabay.questions.bloom import plan, tag_level, targets, within_one
from gabay.questions.models import parse_request
from gabay.questions.offline.closeness import distractor_closeness
from gabay.questions.offline.drafts import BLANK, generate_drafts
from gabay.questions.offline.terms import key_terms
from gabay.questions.stages import QuestionStages
from gabay.settings import Settings
from tests.test_offline_questions import DOCUMENTS, task_for


@pytest.mark.parametrize(("question", "qtype", "level"), [
    ('Fill in the blank: "Gases enter the leaf through _____."', "short_answer", "remember"),
    ("True or false: Evaporation is the change of liquid water into water vapour.", "true_false", "remember"),
    ("Which of these best describes stomata, as the text uses the term?", "multiple_choice", "understand"),
    ("Explain why leaves look green.", "short_answer", "understand"),
    ("Predict what happens to the rate of photosynthesis at 45 degrees Celsius.", "short_answer", "apply"),
    ('According to the text, what is the effect of this? "Cutting down forests"', "multiple_choice",
     "analyse"),
    ("Why did the Katipunan's discovery start the revolution?", "short_answer", "analyse"),
    ("Justify the decision to sign the Pact of Biak-na-Bato.", "short_answer", "evaluate"),
    ("Design an experiment that measures transpiration.", "short_answer", "create"),
])
def test_the_tagger_reads_the_level_from_the_stem(question: str, qtype: str, level: str) -> None:
    assert tag_level(question, qtype) == level  # type: ignore[arg-type]


def test_a_mix_becomes_whole_questions_that_add_up_to_the_count() -> None:
    mix = {"remember": 0.4, "apply": 0.4, "analyse": 0.2}
    assert targets(mix, 5) == {"remember": 2, "apply": 2, "analyse": 1}  # type: ignore[arg-type]
    assert sum(targets(mix, 7).values()) == 7  # type: ignore[arg-type]
    assert sorted(plan(5, mix, "easy")) == sorted(["remember"] * 2 + ["apply"] * 2 + ["analyse"])  # type: ignore[arg-type]
    assert within_one({"remember": 2, "apply": 2}, {"remember": 3, "apply": 1})
    assert not within_one({"remember": 2, "apply": 2}, {"remember": 4})


def test_old_requests_stay_valid_and_a_mix_is_checked() -> None:
    document = {"id": "d", "title": "t", "text": "Some text."}
    assert parse_request({"document": document}).bloom_mix is None
    mixed = parse_request({"document": document, "bloom_mix": {"remember": 0.5, "analyze": 0.5}})
    assert mixed.bloom_mix == {"remember": 0.5, "analyse": 0.5}
    with pytest.raises(InvalidInput, match="bloom_mix: bloom_mix shares must be >= 0 and add up to 1"):
        parse_request({"document": document, "bloom_mix": {"remember": 0.5}})
    with pytest.raises(InvalidInput, match=r"bloom_mix\.memorise"):
        parse_request({"document": document, "bloom_mix": {"memorise": 1.0}})


def _closeness(difficulty: str) -> float:
    values = []
    for path in DOCUMENTS:
        task = task_for(path, count=10, question_types=["multiple_choice"], difficulty=difficulty)
        texts = [p.text for p in task.passages]
        terms = key_terms(texts)
        values += [distractor_closeness(texts, terms, d.answer, d.options)
                   for d in generate_drafts(task, 12) if BLANK in d.question]
    return mean(values)


def test_offline_difficulty_changes_the_distractors_and_the_levels_asked() -> None:
    easy, medium, hard = (_closeness(d) for d in ("easy", "medium", "hard"))
    assert easy < medium < hard

    def above_recall(difficulty: str) -> int:
        return sum(1 for path in DOCUMENTS for d in generate_drafts(task_for(path, difficulty=difficulty), 12)
                   if d.bloom_level != "remember")

    assert above_recall("easy") == 0 < above_recall("medium") < above_recall("hard")


def test_the_result_reports_the_mix_achieved_against_the_request(
        redis_client: redis.Redis, settings: Settings) -> None:
    store = JobStore(redis_client, settings)
    stages = QuestionStages(store, settings)
    store.create("questions", "job")
    document = {"id": "p", "title": "Photosynthesis", "text": DOCUMENTS[1].read_text()}
    request = parse_request({"document": document,
                             "count": 5, "question_types": ["multiple_choice"],
                             "bloom_mix": {"remember": 0.4, "understand": 0.4, "analyse": 0.2}})
    task = stages.validate(stages.draft(stages.retrieve("job", request)))
    result = stages.result(task)

    assert result.bloom is not None
    assert result.bloom.requested == {"remember": 2, "understand": 2, "analyse": 1}
    assert within_one(result.bloom.requested, result.bloom.achieved)
    assert sum(result.bloom.achieved.values()) == len(result.questions) == 5
    assert all(q.bloom_level for q in result.questions)
