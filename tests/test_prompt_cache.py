"""Cache-friendly prompts: static, then the document, then the request; identical prefix bytes.

Providers cache prompt prefixes (DeepSeek bills a hit at 1/50 of a miss, OpenAI routes by
``prompt_cache_key`` and caches from 1024 tokens). The fake servers model both caches.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import Client

from gabay.broker import GabayBroker
from gabay.feedback.prompts import build_prompt
from gabay.feedback.prompts import cache_key as form_cache_key
from gabay.feedback.scoring import score
from gabay.feedback.submission import parse_submission
from gabay.jobs import JobStore, LLMCall
from gabay.llm.job_calls import JobCalls
from gabay.questions.models import Question, QuestionRequest, QuestionTask
from gabay.questions.prompts import (
    DRAFT_SYSTEM,
    VALIDATE_SYSTEM,
    cache_key,
    check_drafts,
    draft_prompt,
    parse_drafts,
    validate_prompt,
)
from gabay.questions.retrieval import select_passages, split_passages
from gabay.settings import Settings, load_settings
from tests.fakes import llm_server as fake
from tests.support.dashboard import PASSWORD, make_app, with_password
from tests.support.feedback_samples import sample

DOCUMENT = Path(__file__).resolve().parent.parent / "examples" / "documents" / "photosynthesis.md"
KEY = "sk-test-key"
AUTH = ("admin", PASSWORD)


def task_for(path: Path = DOCUMENT, **extra: object) -> QuestionTask:
    request = QuestionRequest.model_validate(
        {"document": {"id": path.stem, "title": path.stem, "text": path.read_text()}, "count": 5, **extra})
    passages = select_passages(split_passages(request.document.text), request.topic, request.count)
    return QuestionTask.from_request("job-1", request, passages)


def common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def second_round(task: QuestionTask) -> QuestionTask:
    """The task as the second generation round sees it: round 2, some questions accepted."""
    drafts, _ = parse_drafts(fake.exam_responder({"messages": [
        {"content": DRAFT_SYSTEM}, {"content": draft_prompt(task, 3)}]}), task)
    accepted = [Question(id=f"q{i}", type=d.type, question=d.question, options=d.options,
                         answer=d.answer, passage_id=d.passage_id, evidence=d.evidence)
                for i, d in enumerate(drafts, 1)]
    return task.model_copy(update={"round": 2, "accepted": accepted})


def test_two_generation_rounds_share_every_byte_through_the_passages() -> None:
    first = task_for(difficulty="hard", topic="chlorophyll", language="fil")
    round_1, round_2 = draft_prompt(first, 8), draft_prompt(second_round(first), 4)
    passages_end = round_1.index('"task"')

    assert json.loads(round_1)["passages"] and list(json.loads(round_1))[:2] == ["document_title", "passages"]
    assert common_prefix(round_1, round_2) >= passages_end  # document first, identical bytes
    assert round_1[passages_end:] != round_2[passages_end:]  # the request fields come after
    # validation shares the same system message and the same document prefix
    assert DRAFT_SYSTEM == VALIDATE_SYSTEM
    assert common_prefix(round_1, validate_prompt(first, [])) >= passages_end
    # and nothing per request is in the shared part
    assert "chlorophyll" not in round_1[:passages_end].split('"passages"')[0]
    assert '"fil"' not in round_1[:passages_end] and '"hard"' not in round_1[:passages_end]


def test_the_cache_key_is_per_document_and_stable() -> None:
    assert cache_key(task_for()) == cache_key(second_round(task_for(difficulty="easy")))
    other = DOCUMENT.with_name("water-cycle.md")
    assert cache_key(task_for(other)) != cache_key(task_for())
    assert "photosynthesis" not in cache_key(task_for())  # a digest, not the id itself


def test_two_students_of_one_form_share_the_prompt_through_the_form() -> None:
    a, b = sample("mixed-score"), sample("all-wrong")
    b["form"] = a["form"]
    first, second = parse_submission(a), parse_submission(b)
    system_a, user_a = build_prompt(first, score(first))
    system_b, user_b = build_prompt(second, score(second))

    assert system_a == system_b
    form_end = user_a.index("</form>") + len("</form>")
    assert common_prefix(user_a, user_b) >= form_end
    assert first.student.name.split()[0] not in user_a[:form_end]  # nothing per student before
    assert form_cache_key(first) == form_cache_key(second)


@pytest.fixture
def servers() -> Iterator[tuple[fake.FakeLLMServer, fake.FakeLLMServer]]:
    with fake.running("deepseek", api_key=KEY, responder=fake.exam_responder) as deepseek, \
            fake.running("openai", api_key=KEY, responder=fake.exam_responder) as openai_server:
        yield deepseek.model_caching(), openai_server.model_caching()


def test_the_second_round_reads_the_passages_from_the_cache_and_the_job_shows_it(
        servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer], redis_client: redis.Redis) -> None:
    deepseek, openai_server = servers
    settings = load_settings(deepseek_api_key=KEY, deepseek_base_url=deepseek.base_url,
                             openai_api_key=KEY, openai_base_url=openai_server.base_url, llm_timeout=10)
    store = JobStore(redis_client, settings)
    store.create("questions", "job-1")
    calls = JobCalls.shared(store, "job-1", settings)
    task = task_for()
    for stage, current in (("generation", task), ("generation-2", second_round(task))):
        calls.complete(calls.chain("draft"), DRAFT_SYSTEM, draft_prompt(current, 6), stage=stage,
                       cache_key=cache_key(current), check=lambda data, t=current: check_drafts(data, t))

    record = store.get("job-1")
    share = record.details["cached_share"]
    assert share["generation"]["deepseek"] == 0.0
    assert share["generation-2"]["deepseek"] >= 0.8
    totals = store.cache_totals()
    assert totals["generation-2"]["deepseek"]["cached_tokens"] == record.calls[1].cached_tokens > 0
    bodies = deepseek.bodies()
    assert all("user" not in body and "prompt_cache_key" not in body for body in bodies)


def test_openai_gets_the_documents_cache_key_and_no_user(
        servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer], redis_client: redis.Redis) -> None:
    _, openai_server = servers
    settings = load_settings(openai_api_key=KEY, openai_base_url=openai_server.base_url, llm_timeout=10)
    store = JobStore(redis_client, settings)
    store.create("questions", "job-1")
    calls = JobCalls.shared(store, "job-1", settings)
    task = task_for()
    calls.complete(calls.chain("validate"), VALIDATE_SYSTEM, validate_prompt(task, []), stage="validation",
                   cache_key=cache_key(task))

    (body,) = openai_server.bodies()
    assert body["prompt_cache_key"] == cache_key(task) and "user" not in body


def test_the_cache_share_per_stage_is_in_metrics_and_the_status_api(
        broker: GabayBroker, redis_client: redis.Redis, settings: Settings) -> None:
    store = JobStore(redis_client, settings)
    job = store.create("questions")
    for stage, cached in (("generation", 0), ("generation-2", 900)):
        store.add_call(job.id, LLMCall(stage=stage, provider="deepseek", model="deepseek-flash",
                                       prompt_tokens=1000, cached_tokens=cached, completion_tokens=100))
    app = Client(make_app(with_password(settings), redis_client, broker))

    text = app.get("/metrics", auth=AUTH).get_data(as_text=True)
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for family in text_string_to_metric_families(text) for s in family.samples}
    second = (("provider", "deepseek"), ("stage", "generation-2"))
    assert found[("gabay_llm_cached_share", second)] == pytest.approx(0.9)
    assert found[("gabay_llm_stage_tokens_total", (("kind", "cached"), *second))] == 900
    assert found[("gabay_llm_cached_share", (("provider", "deepseek"), ("stage", "generation")))] == 0
    cache = app.get("/api/llm", auth=AUTH).get_json()["cache"]
    assert {"stage": "generation-2", "provider": "deepseek", "prompt_tokens": 1000, "cached_tokens": 900,
            "cached_share": 0.9} in cache
    assert store.get(job.id).details["cached_share"] == {"generation": {"deepseek": 0.0},
                                                         "generation-2": {"deepseek": 0.9}}
