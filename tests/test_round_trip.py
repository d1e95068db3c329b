"""The blind round trip: an answerer that never sees the key must reach it, or the draft is rejected."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from pydantic import SecretStr

from gabay.errors import ProviderUnavailable
from gabay.jobs import JobStore
from gabay.questions.gate import ROUND_TRIP_REJECTED, offline_answers
from gabay.questions.models import Draft, QuestionTask, parse_request
from gabay.questions.offline.drafts import generate_drafts
from gabay.questions.round_trip import agrees, answer_offline
from gabay.questions.stages import QuestionStages
from gabay.settings import Settings
from tests.fakes import llm_server as fake
from tests.test_offline_questions import DOCUMENTS, task_for


def wrong_key(draft: Draft) -> Draft:
    """The same draft keyed wrong: another option, the other truth value, another term."""
    if draft.type == "multiple_choice":
        return draft.model_copy(update={"answer": next(o for o in draft.options if o != draft.answer)})
    if draft.type == "true_false":
        return draft.model_copy(update={"answer": "False" if draft.answer == "True" else "True"})
    return draft.model_copy(update={"answer": "a volcano"})


def test_the_offline_answerer_reaches_the_key_of_every_offline_draft() -> None:
    for path in DOCUMENTS:
        for difficulty in ("easy", "medium", "hard"):
            task = task_for(path, count=10, difficulty=difficulty)
            answers = offline_answers(task, generate_drafts(task, 17))
            drafts = generate_drafts(task, 17)
            assert all(agrees(d, answers[d.id]) for d in drafts), [
                (d.question, d.answer, answers[d.id]) for d in drafts if not agrees(d, answers[d.id])]


def test_the_answerer_never_uses_the_key_and_disagrees_with_a_wrong_one() -> None:
    task = task_for(DOCUMENTS[1], count=10)
    drafts = generate_drafts(task, 17)
    for draft in drafts:
        blind = answer_offline(draft.model_copy(update={"answer": "", "evidence": ""}), task.passages)
        assert blind == answer_offline(draft, task.passages)
        assert not agrees(wrong_key(draft), blind), draft.question


def test_a_models_choice_may_name_the_option_by_its_letter() -> None:
    draft = Draft(id="d", type="multiple_choice", question="Which gas is released?", passage_id="p1",
                  options=["Carbon dioxide", "Oxygen", "Nitrogen"], answer="Oxygen")
    assert agrees(draft, "Oxygen") and agrees(draft, "b") and agrees(draft, "B) Oxygen")
    assert not agrees(draft, "a") and not agrees(draft, "B) Nitrogen") and not agrees(draft, "unknown")


def test_a_draft_keyed_wrong_is_rejected_by_the_round_trip_with_its_scores(
        redis_client: redis.Redis, settings: Settings) -> None:
    store = JobStore(redis_client, settings)
    stages = QuestionStages(store, settings)
    store.create("questions", "job")
    path = DOCUMENTS[2]
    request = parse_request({"document": {"id": "w", "title": "The Water Cycle", "text": path.read_text()},
                             "count": 4})
    task = stages.draft(stages.retrieve("job", request))
    bad = wrong_key(task.drafts[0])
    task = stages.validate(task.model_copy(update={"drafts": [bad, *task.drafts[1:]]}))

    [rejection] = [r for r in task.rejected if r.draft_id == bad.id]
    assert rejection.reason == ROUND_TRIP_REJECTED
    assert rejection.quality is not None and rejection.quality.round_trip is not None
    assert rejection.quality.round_trip.agreed is False and rejection.quality.round_trip.by == "offline"
    assert task.accepted
    for question in task.accepted:
        assert question.quality is not None and question.quality.flaws == []
        assert question.quality.round_trip is not None and question.quality.round_trip.agreed
        assert question.bloom_level is not None
    stored = store.get("job").details["validation"]["rejected"]
    assert any(r["reason"] == ROUND_TRIP_REJECTED and r["quality"]["round_trip"]["agreed"] is False
               for r in stored)


def _settings_with(settings: Settings, deepseek: fake.FakeLLMServer, openai: fake.FakeLLMServer) -> Settings:
    return settings.model_copy(update={
        "deepseek_api_key": SecretStr("sk-test-key"), "deepseek_base_url": deepseek.base_url,
        "openai_api_key": SecretStr("sk-test-key"), "openai_base_url": openai.base_url, "llm_timeout": 10.0})


def _task_of(body: dict[str, Any]) -> dict[str, Any]:
    """The task of a request: its first user message (a re-ask appends the error after it)."""
    return json.loads(next(m["content"] for m in body["messages"] if m["role"] == "user"))


def test_with_a_model_the_blind_answerer_sees_no_key_and_its_disagreement_rejects(
        redis_client: redis.Redis, settings: Settings) -> None:
    def confused(body: dict[str, Any]) -> dict[str, Any]:
        """A validator that approves everything, a blind answerer that gets the first item wrong."""
        sent = _task_of(body)
        if sent.get("task") != "answer_questions":
            return fake.exam_responder(body)
        answers = fake.blind_answers(sent)["answers"]
        answers[0]["answer"] = "unknown"
        if not any(_task_of(b).get("task") == "answer_questions" for b in openai.bodies()[:-1]):
            return {"answers": answers[1:]}  # the first answer misses an id: asked again
        return {"answers": answers}

    with fake.running("deepseek", responder=fake.exam_responder) as deepseek, \
            fake.running("openai", responder=confused) as openai:
        store = JobStore(redis_client, settings)
        stages = QuestionStages(store, _settings_with(settings, deepseek, openai))
        store.create("questions", "job")
        request = parse_request({"document": {"id": "p", "title": "Photosynthesis",
                                              "text": DOCUMENTS[1].read_text()}, "count": 3})
        task: QuestionTask = stages.validate(stages.draft(stages.retrieve("job", request)))
        asked = [_task_of(b) for b in openai.bodies() if _task_of(b).get("task") == "answer_questions"]

    assert len(asked) == 2  # one re-ask: the first answer missed a question id
    assert all("answer" not in q and "evidence" not in q for q in asked[0]["questions"])
    first = asked[0]["questions"][0]["id"]
    assert [r.reason for r in task.rejected if r.draft_id == first] == [ROUND_TRIP_REJECTED]
    assert all(q.quality and q.quality.round_trip and q.quality.round_trip.by.startswith("openai:")
               for q in task.accepted)
    stages_called = [(c.stage, c.ok) for c in store.get("job").calls]
    assert stages_called == [("generation", True), ("validation-round-trip", False),
                             ("validation-round-trip", True), ("validation", True)]


def test_a_validator_fault_after_the_round_trip_does_not_pay_for_the_round_trip_again(
        redis_client: redis.Redis, settings: Settings) -> None:
    with fake.running("openai", responder=fake.exam_responder) as openai:
        only_openai = settings.model_copy(update={"openai_api_key": SecretStr("sk-test-key"),
                                                  "openai_base_url": openai.base_url, "llm_timeout": 10.0})
        store = JobStore(redis_client, settings)
        stages = QuestionStages(store, only_openai)
        store.create("questions", "job")
        request = parse_request({"document": {"id": "w", "title": "The Water Cycle",
                                              "text": DOCUMENTS[2].read_text()}, "count": 3})
        drafted = stages.draft(stages.retrieve("job", request))
        openai.script(fake.answer())  # the round trip is answered, then the validator fails
        openai.default = fake.server_error(503)
        with pytest.raises(ProviderUnavailable):
            stages.validate(drafted)
        openai.default = fake.answer()
        task = stages.validate(drafted)  # the stage's retry
        asked = [_task_of(b).get("task") for b in openai.bodies()]

    assert asked.count("answer_questions") == 1  # kept from the first run (its checkpoint)
    assert asked[-1] == "validate_questions" and task.accepted
    assert [c.stage for c in store.get("job").calls if c.ok] == [
        "generation", "validation-round-trip", "validation"]
