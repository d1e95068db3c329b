"""Scores and per-question facts are computed by code, for every sample."""

from __future__ import annotations

import pytest

from gabay.feedback.scoring import Outcome, normalize, score
from gabay.feedback.submission import parse_submission
from tests.support.feedback_samples import EXPECTED, SAMPLE_NAMES, sample


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_every_sample_gets_its_score(name: str) -> None:
    earned, possible, pending, _ = EXPECTED[name]

    result = score(parse_submission(sample(name)))

    assert (result.earned, result.possible, result.pending_points) == (earned, possible, pending)


def test_the_facts_say_which_answers_are_right_wrong_or_open() -> None:
    mixed = score(parse_submission(sample("mixed-score")))
    assert [f.outcome for f in mixed.facts] == [Outcome.WRONG, Outcome.RIGHT, Outcome.RIGHT,
                                                Outcome.WRONG, Outcome.RIGHT]
    assert mixed.noted_ids == ["q1", "q4"]
    assert mixed.label == "3 / 5 (60%)"

    essay = score(parse_submission(sample("with-open-question")))
    assert essay.open[0].question_id == "q6" and essay.open[0].points is None
    assert essay.noted_ids == ["q6"]
    assert essay.pending_questions == 1 and essay.label == "5 / 5 (100%)"

    assert score(parse_submission(sample("all-wrong"))).label == "0 / 5 (0%)"


def test_answers_compare_like_a_teacher_would() -> None:
    assert normalize("  Thylakoid   MEMBRANES. ") == normalize("thylakoid membranes")
    assert normalize("Oxígeno") == normalize("oxigeno")
    assert normalize("Oxygen") != normalize("Nitrogen")


def test_points_are_derived_when_the_submission_has_none() -> None:
    data = sample("mixed-score")
    for answer in data["answers"]:
        answer["points"] = None
    result = score(parse_submission(data))
    assert (result.earned, result.possible) == (3, 5)


def test_a_blank_answer_is_wrong() -> None:
    data = sample("perfect-score")
    data["answers"][0]["answer"] = ""
    data["answers"][0]["points"] = None
    result = score(parse_submission(data))
    assert result.facts[0].outcome is Outcome.WRONG and result.facts[0].points == 0


def test_a_teacher_graded_open_answer_counts_in_the_score() -> None:
    data = sample("with-open-question")
    data["answers"][-1]["points"] = 1.5
    result = score(parse_submission(data))
    assert (result.earned, result.possible, result.pending_points) == (6.5, 7, 0)
    assert result.label == "6.5 / 7 (93%)"
