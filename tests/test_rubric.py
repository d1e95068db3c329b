"""The feedback rubric: checked in code on every email's words, one regeneration, then the offline writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from gabay.feedback.model import Feedback, QuestionNote
from gabay.feedback.offline.writer import offline_feedback
from gabay.feedback.pipeline import FeedbackContext, process
from gabay.feedback.rubric import check_rubric
from gabay.feedback.scoring import score
from gabay.feedback.submission import job_id_for, parse_submission
from gabay.feedback.writer import write_feedback
from gabay.jobs import LLMCall
from gabay.settings import load_settings
from tests.fakes import llm_server
from tests.fakes.brevo_server import FakeBrevo
from tests.support.feedback_llm import feedback_responder
from tests.support.feedback_samples import SAMPLE_NAMES, sample


def good_feedback(name: str = "mixed-score") -> tuple[Feedback, Any, Any]:
    submission = parse_submission(sample(name))
    facts = score(submission)
    return offline_feedback(submission, facts), submission, facts


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_the_offline_writer_meets_every_criterion_on_every_sample(name: str) -> None:
    feedback, submission, facts = good_feedback(name)
    assert check_rubric(feedback, submission, facts).problems == {}


def _changed(feedback: Feedback, **update: Any) -> Feedback:
    return feedback.model_copy(update=update)


#: criterion -> a hand-labelled failing change of the mixed-score feedback (3 of 5; q1, q4 wrong).
BAD: dict[str, Any] = {
    "strength": lambda f: _changed(f, strengths=["Good job!"]),
    "anchored": lambda f: _changed(f, notes=[QuestionNote(question_id="q1", note="Look at this one again."),
                                             f.notes[1]]),
    "actionable": lambda f: _changed(f, next_steps=["Photosynthesis is interesting."]),
    "tone": lambda f: _changed(f, summary="That was a careless effort, Jose."),
    "consistent": lambda f: _changed(f, summary="Well done, Jose! You got 4 of 5 questions right."),
}


@pytest.mark.parametrize("criterion", sorted(BAD))
def test_each_criterion_catches_its_hand_labelled_bad_feedback(criterion: str) -> None:
    feedback, submission, facts = good_feedback()
    result = check_rubric(BAD[criterion](feedback), submission, facts)
    assert list(result.problems) == [criterion], result.problems


def test_praise_must_fit_the_score() -> None:
    feedback, submission, facts = good_feedback("all-wrong")
    assert "tone" in check_rubric(_changed(feedback, summary="Excellent work on this quiz."),
                                  submission, facts).problems
    perfect, submission, facts = good_feedback("perfect-score")
    assert "tone" in check_rubric(_changed(perfect, summary="Good, but you missed some."), submission,
                                  facts).problems
    assert "strength" in check_rubric(_changed(feedback, strengths=["You got question 2 right."]),
                                      *good_feedback("all-wrong")[1:]).problems


def generic(body: dict[str, Any]) -> dict[str, Any]:
    """Feedback that fits the schema but names nothing: the kind the rubric refuses."""
    feedback = feedback_responder(body)
    feedback["strengths"] = ["Clear answers."]
    feedback["notes"] = [{"question_id": n["question_id"], "note": "Look at this again."}
                         for n in feedback["notes"]]
    return feedback


def _settings(openai: llm_server.FakeLLMServer, **overrides: Any) -> Any:
    return load_settings(openai_api_key=openai.api_key, openai_base_url=openai.base_url, llm_timeout=10,
                         **overrides)


def _write(settings: Any) -> tuple[Feedback, str, list[LLMCall], list[dict[str, object]]]:
    submission = parse_submission(sample("mixed-score"))
    calls: list[LLMCall] = []
    verdicts: list[dict[str, object]] = []
    feedback, source = write_feedback(settings, submission, score(submission), record=calls.append,
                                      report=verdicts.append)
    return feedback, source, calls, verdicts


def test_feedback_that_misses_the_rubric_is_regenerated_once_with_the_problems() -> None:
    answers = iter([generic, feedback_responder])
    with llm_server.running(responder=lambda body: next(answers)(body)) as openai:
        feedback, source, calls, verdicts = _write(_settings(openai))
        second = json.dumps(openai.bodies()[1]["messages"])

    assert source == "openai:gpt-4o-mini"
    assert [c.provider for c in calls] == ["openai", "openai"]
    assert "did not meet the feedback rubric" in second and "anchored" in second
    assert verdicts[-1]["passed"] is True and verdicts[-1]["regenerated"] is True
    assert "Thylakoid membranes" in (feedback.note_for("q1") or "")


def test_a_second_miss_falls_back_to_the_offline_writer() -> None:
    with llm_server.running(responder=generic) as openai:
        feedback, source, calls, verdicts = _write(_settings(openai))

    assert source.startswith("offline (after: openai feedback missed the rubric after one regeneration")
    assert [c.provider for c in calls] == ["openai", "openai", "offline"]
    assert feedback.summary.startswith("Good effort, Jose.")
    assert [v["passed"] for v in verdicts] == [False, True] and verdicts[-1]["by"] == "offline"


def test_a_failed_regeneration_call_falls_back_to_the_offline_writer() -> None:
    with llm_server.running(responder=generic) as openai:
        openai.script(llm_server.answer(), llm_server.server_error(503), llm_server.server_error(503),
                      llm_server.server_error(503))
        _, source, calls, verdicts = _write(_settings(openai))

    assert source.startswith("offline (after: openai feedback missed the rubric")
    assert calls[0].ok and not calls[1].ok and calls[-1].provider == "offline"
    assert verdicts[0]["passed"] is False and "error" in verdicts[0]


def test_the_email_is_sent_once_with_words_that_met_the_rubric(redis_client: redis.Redis, tmp_path: Path,
                                                               brevo: FakeBrevo) -> None:
    with llm_server.running(responder=generic) as openai:
        settings = load_settings(email_outbox_dir=tmp_path / "outbox", brevo_timeout=2, llm_timeout=10,
                                 brevo_api_key=brevo.api_key, brevo_base_url=brevo.base_url,
                                 openai_api_key=openai.api_key, openai_base_url=openai.base_url)
        ctx = FeedbackContext.build(settings, redis_client)
        first = process(ctx, sample("mixed-score"))
        second = process(ctx, sample("mixed-score"))  # a duplicate: nothing more is sent or asked
        asked = len(openai.requests)

    assert len(brevo.accepted) == 1 and second["message_id"] == first["message_id"]
    assert asked == 2  # the first answer and its one regeneration, none for the duplicate
    assert "Thylakoid membranes" in brevo.accepted[0]["textContent"]
    rubric = ctx.store.get(job_id_for("resp-0002")).details["feedback_rubric"]
    assert rubric["passed"] is True and rubric["by"] == "offline"


def test_problems_never_quote_the_feedback_which_may_name_the_student() -> None:
    feedback, submission, facts = good_feedback("all-wrong")
    bad = _changed(feedback, strengths=["Maria Santos, you got it right!"],
                   summary="MARIA SANTOS, TRY HARDER!!!!", next_steps=["Maria Santos is here."])
    result = check_rubric(bad, submission, facts)
    assert set(result.problems) >= {"strength", "tone", "actionable"}
    assert "maria" not in result.summary().casefold() and "santos" not in result.summary().casefold()
