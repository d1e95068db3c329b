"""Offline feedback: kind, specific, localized, built from the computed facts only."""

from __future__ import annotations

import pytest

from gabay.feedback.model import check_feedback
from gabay.feedback.offline.writer import offline_feedback
from gabay.feedback.scoring import score
from gabay.feedback.submission import parse_submission
from tests.support.feedback_samples import SAMPLE_NAMES, sample


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_every_sample_gets_one_note_per_wrong_or_open_answer(name: str) -> None:
    submission = parse_submission(sample(name))
    facts = score(submission)

    feedback = offline_feedback(submission, facts)

    assert [n.question_id for n in feedback.notes] == facts.noted_ids
    assert feedback.summary and feedback.next_steps
    check_feedback(feedback.model_dump(), facts)  # passes the checks a model's answer must pass


def test_wrong_answers_are_explained_with_the_answer_key() -> None:
    submission = parse_submission(sample("mixed-score"))
    feedback = offline_feedback(submission, score(submission))

    assert feedback.note_for("q1") == (
        "You answered \u201cStroma\u201d; the correct answer is \u201cThylakoid membranes\u201d. "
        "Review this idea and compare the two answers.")
    assert "Review the question(s) you missed: 1, 4." in feedback.next_steps
    assert feedback.summary.startswith("Good effort, Jose.")


def test_a_perfect_score_is_celebrated_and_an_all_wrong_one_encouraged() -> None:
    perfect = parse_submission(sample("perfect-score"))
    assert offline_feedback(perfect, score(perfect)).summary.startswith("Excellent work, Maria!")
    wrong = parse_submission(sample("all-wrong"))
    feedback = offline_feedback(wrong, score(wrong))
    assert feedback.summary.startswith("Thank you for completing Photosynthesis Quiz, Ana.")
    assert "You finished the whole quiz: a good start to build on." in feedback.strengths


def test_open_answers_are_left_to_the_teacher() -> None:
    submission = parse_submission(sample("with-open-question"))
    feedback = offline_feedback(submission, score(submission))
    assert "Your teacher will review this answer" in (feedback.note_for("q6") or "")
    assert "Look out for your teacher's comments on your written answer." in feedback.next_steps


@pytest.mark.parametrize("language", ["tl", "fil", "fil-PH"])
def test_tagalog_and_filipino_get_tagalog_feedback(language: str) -> None:
    data = sample("tagalog")
    data["language"] = language
    submission = parse_submission(data)

    feedback = offline_feedback(submission, score(submission))

    assert feedback.summary.startswith("Magandang pagsisikap, Juan.")
    assert feedback.note_for("q2") == (
        "Ang sagot mo ay \u201cCarbon dioxide\u201d; ang tamang sagot ay \u201cOxygen\u201d. "
        "Balikan ang araling ito at ihambing ang dalawang sagot.")


def test_other_languages_fall_back_to_english_wording() -> None:
    data = sample("mixed-score")
    data["language"] = "sw"
    submission = parse_submission(data)
    assert offline_feedback(submission, score(submission)).summary.startswith("Good effort")
