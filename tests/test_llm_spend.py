"""LLM spend: quota exhaustion fails over (and alerts), dated prices, the shutdown of a model,
one re-ask of a schema-invalid answer, the per-job token budget and per-call checkpoints."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest
import redis
from freezegun import freeze_time

from gabay.alerts.provider_quota import ProviderQuota
from gabay.alerts.rules import ClusterView
from gabay.errors import BudgetExhausted, ProviderHeld, ProviderUnavailable
from gabay.feedback.scoring import score
from gabay.feedback.submission import parse_submission
from gabay.feedback.writer import write_feedback
from gabay.jobs import JobStore, LLMCall
from gabay.limits.provider_budget import ProviderBudget
from gabay.llm.job_calls import CHECKPOINTS, TOKEN_BUDGET, JobCalls, spent_today, utc_day
from gabay.llm.pricing import DEEPSEEK_FLASH_OFF_PEAK, DEEPSEEK_FLASH_PEAK, is_deepseek_peak, price_of
from gabay.llm.providers import provider_chain
from gabay.settings import Settings, load_settings
from tests.fakes import llm_server as fake
from tests.support.feedback_llm import feedback_responder
from tests.support.feedback_samples import sample

KEY = "sk-test-key"


@pytest.fixture
def servers() -> Iterator[tuple[fake.FakeLLMServer, fake.FakeLLMServer]]:
    with fake.running("deepseek", api_key=KEY) as deepseek, \
            fake.running("openai", api_key=KEY) as openai_server:
        yield deepseek, openai_server


def both(deepseek: fake.FakeLLMServer, openai_server: fake.FakeLLMServer, **overrides: object) -> Settings:
    return load_settings(deepseek_api_key=KEY, deepseek_base_url=deepseek.base_url, openai_api_key=KEY,
                         openai_base_url=openai_server.base_url, llm_timeout=10, **overrides)


# -- quota and billing exhaustion ----------------------------------------------------------------

def test_openai_out_of_quota_hands_feedback_to_deepseek_and_raises_an_alert(
        servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer], redis_client: redis.Redis) -> None:
    deepseek, openai_server = servers
    openai_server.default = fake.insufficient_quota()
    deepseek.responder = feedback_responder
    settings = both(deepseek, openai_server)
    budget = ProviderBudget(redis_client, settings.keys)
    submission = parse_submission(sample("mixed-score"))
    calls: list[LLMCall] = []

    feedback, source = write_feedback(settings, submission, score(submission), calls.append, budget)

    assert source == "deepseek:deepseek-flash"  # not the offline writer
    assert feedback.summary == "Good work overall."
    assert [(c.provider, c.ok) for c in calls] == [("openai", False), ("deepseek", True)]
    assert len(openai_server.requests) == 1  # no SDK retry of a quota error under a budget
    view = ClusterView(redis_client, settings.keys, reader=None, now_ms=int(time.time() * 1000))  # type: ignore[arg-type]
    (finding,) = ProviderQuota().check(view)
    assert finding.subject == "openai" and "out of quota" in finding.summary
    # the next job skips the exhausted key without calling it
    write_feedback(settings, submission, score(submission), calls.append, budget)
    assert len(openai_server.requests) == 1 and len(deepseek.requests) == 2
    # with no other provider, an exhausted key is unavailable (offline feedback), not busy (no wait)
    only_openai = load_settings(openai_api_key=KEY, openai_base_url=openai_server.base_url, llm_timeout=10)
    _, source = write_feedback(only_openai, submission, score(submission), calls.append, budget)
    assert source.startswith("offline") and "quota exhausted" in source
    assert len(openai_server.requests) == 1


def test_deepseek_out_of_balance_hands_drafting_to_openai(
        servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer], redis_client: redis.Redis) -> None:
    deepseek, openai_server = servers
    deepseek.default = fake.payment_required()
    openai_server.responder = lambda body: {"questions": []}
    settings = both(deepseek, openai_server)
    store = JobStore(redis_client, settings)
    store.create("questions", "job-1")
    calls = JobCalls.shared(store, "job-1", settings)

    completion = calls.complete(calls.chain("draft"), "Reply in JSON.", "x", stage="generation")

    assert completion.call.provider == "openai"
    assert [(c.provider, c.ok) for c in store.get("job-1").calls] == [("deepseek", False), ("openai", True)]


def test_the_quota_alert_resolves_when_no_exhaustion_is_recent(redis_client: redis.Redis,
                                                              settings: Settings) -> None:
    from gabay.limits.provider_budget import note_quota_exhausted

    note_quota_exhausted(redis_client, settings.keys, "deepseek", "HTTP 402", at=time.time() - 3600)
    view = ClusterView(redis_client, settings.keys, reader=None, now_ms=int(time.time() * 1000))  # type: ignore[arg-type]
    assert ProviderQuota().check(view) == []


# -- prices and models -----------------------------------------------------------------------------

@pytest.mark.parametrize(("at", "peak"), [
    ("2026-12-07T02:30:00+00:00", True),  # Monday 10:30 in Beijing
    ("2026-12-11T09:59:00+00:00", True),  # Friday 17:59 in Beijing
    ("2026-12-12T02:30:00+00:00", False),  # Saturday
    ("2026-12-13T07:00:00+00:00", False),  # Sunday
    ("2026-12-07T05:00:00+00:00", False),  # Monday lunch break (13:00 in Beijing)
    ("2026-12-07T12:00:00+00:00", False),  # Monday evening
])
def test_deepseek_peak_is_monday_to_friday_only(at: str, peak: bool) -> None:
    settings = load_settings()
    moment = dt.datetime.fromisoformat(at)
    assert is_deepseek_peak(moment) is peak
    expected = DEEPSEEK_FLASH_PEAK if peak else DEEPSEEK_FLASH_OFF_PEAK
    assert price_of(settings, "deepseek-flash", moment) == expected


def test_a_chinese_public_holiday_is_off_peak_and_prices_stay_overridable() -> None:
    monday = dt.datetime(2026, 12, 7, 2, 30, tzinfo=dt.UTC)
    settings = load_settings(deepseek_holidays=["2026-12-07"], llm_prices={"deepseek-flash": [1.0, 0.5, 2.0]})
    holiday = load_settings(deepseek_holidays=["2026-12-07"])
    assert price_of(holiday, "deepseek-flash", monday) == DEEPSEEK_FLASH_OFF_PEAK
    assert price_of(settings, "deepseek-flash", monday) == (1.0, 0.5, 2.0)


def test_the_default_model_keeps_working_after_gpt_4o_mini_shuts_down(
        servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer]) -> None:
    deepseek, openai_server = servers
    settings = both(deepseek, openai_server)
    assert settings.openai_chat_model == "gpt-4o-mini"  # the default, never reconfigured
    with freeze_time("2027-01-13 23:59:00"):
        assert [p.model for p in provider_chain(settings, "feedback")] == ["gpt-4o-mini", "deepseek-flash"]
    with freeze_time("2027-01-14 00:00:01"):
        chain = provider_chain(settings, "validate")
    assert chain[0].model == "gpt-6-luna"
    completion = chain[0].complete_json("Reply in JSON.", "x", stage="validation")
    assert openai_server.bodies()[-1]["model"] == "gpt-6-luna"
    assert completion.call.cost_usd > 0  # the successor is priced


# -- re-ask, token budget, checkpoints -------------------------------------------------------------

def test_a_schema_invalid_answer_is_asked_again_once_with_the_error(
        servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer], redis_client: redis.Redis) -> None:
    deepseek, openai_server = servers
    deepseek.script(fake.answer({"items": []}), fake.answer({"questions": []}))
    settings = both(deepseek, openai_server)
    store = JobStore(redis_client, settings)
    store.create("questions", "job-1")
    calls = JobCalls.shared(store, "job-1", settings)

    def check(data: dict) -> None:
        if not isinstance(data.get("questions"), list):
            raise ValueError('the object must have a "questions" list')

    completion = calls.complete(calls.chain("draft"), "Reply in JSON.", "x", stage="generation", check=check)

    assert completion.data == {"questions": []} and openai_server.requests == []
    first, again = deepseek.bodies()
    assert again["messages"][:2] == first["messages"]  # the same prefix: the re-ask is cached too
    assert again["messages"][2] == {"role": "assistant", "content": '{"items": []}'}
    assert '"questions" list' in again["messages"][3]["content"]
    record = store.get("job-1")
    assert [(c.provider, c.ok) for c in record.calls] == [("deepseek", False), ("deepseek", True)]
    assert record.details[TOKEN_BUDGET] == {"limit": 60_000, "spent": record.total_tokens}


def test_a_second_invalid_answer_moves_on_to_the_next_provider(
        servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer], redis_client: redis.Redis) -> None:
    deepseek, openai_server = servers
    deepseek.default = fake.answer({"items": []})
    openai_server.responder = lambda body: {"questions": []}
    settings = both(deepseek, openai_server)
    store = JobStore(redis_client, settings)
    store.create("questions", "job-1")
    calls = JobCalls.shared(store, "job-1", settings)

    def check(data: dict) -> None:
        if "questions" not in data:
            raise ProviderUnavailable("no questions")

    completion = calls.complete(calls.chain("draft"), "Reply in JSON.", "x", stage="generation", check=check)
    assert completion.call.provider == "openai" and len(deepseek.requests) == 2


def test_the_job_token_budget_stops_calls_before_they_are_made(
        servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer], redis_client: redis.Redis) -> None:
    deepseek, openai_server = servers
    deepseek.default = fake.answer({"questions": []}, prompt_tokens=1500, completion_tokens=500)
    settings = both(deepseek, openai_server, llm_job_token_budget=3000)
    store = JobStore(redis_client, settings)
    store.create("questions", "job-1")
    calls = JobCalls.shared(store, "job-1", settings)
    calls.complete(calls.chain("draft"), "Reply in JSON.", "x", stage="generation")

    with pytest.raises(BudgetExhausted, match="token budget"):
        calls.complete(calls.chain("draft"), "Reply in JSON.", "y" * 3000, stage="generation-2")
    assert len(deepseek.requests) == 1 and openai_server.requests == []
    assert store.get("job-1").details[TOKEN_BUDGET] == {"limit": 3000, "spent": 2000}


def test_a_stage_run_again_reuses_its_paid_answer(
        servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer], redis_client: redis.Redis) -> None:
    deepseek, openai_server = servers
    deepseek.default = fake.answer({"questions": ["kept"]})
    settings = both(deepseek, openai_server)
    store = JobStore(redis_client, settings)
    store.create("questions", "job-1")
    for _ in range(2):
        calls = JobCalls.shared(store, "job-1", settings)
        completion = calls.complete(calls.chain("draft"), "Reply in JSON.", "x", stage="generation")
        assert completion.data == {"questions": ["kept"]}
    assert len(deepseek.requests) == 1
    assert list(store.get("job-1").details[CHECKPOINTS]) == ["generation"]
    # another prompt for the same stage is not the same call
    calls.complete(calls.chain("draft"), "Reply in JSON.", "other", stage="generation")
    assert len(deepseek.requests) == 2


# -- the cluster's daily spend budget --------------------------------------------------------------

def test_over_the_daily_budget_paid_calls_wait_for_the_next_day(
        servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer], redis_client: redis.Redis) -> None:
    deepseek, openai_server = servers
    deepseek.default = fake.answer({"questions": []}, prompt_tokens=100_000, completion_tokens=10_000)
    settings = both(deepseek, openai_server, llm_daily_budget_usd=0.01, llm_job_token_budget=0)
    store = JobStore(redis_client, settings)
    store.create("questions", "job-1")
    calls = JobCalls.shared(store, "job-1", settings)
    calls.complete(calls.chain("draft"), "Reply in JSON.", "x", stage="generation")  # about $0.02
    assert spent_today(redis_client, settings) == pytest.approx(store.get("job-1").cost_usd)

    with pytest.raises(ProviderHeld, match="daily LLM budget") as held:
        calls.complete(calls.chain("draft"), "Reply in JSON.", "y", stage="generation-2")
    assert 0 < held.value.retry_in_ms <= 3_600_000
    assert len(deepseek.requests) == 1 and openai_server.requests == []


def test_over_the_daily_budget_the_cheaper_policy_asks_deepseek_first(
        servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer], redis_client: redis.Redis) -> None:
    deepseek, openai_server = servers
    settings = both(deepseek, openai_server, llm_daily_budget_usd=0.01, llm_daily_budget_policy="cheaper")
    store = JobStore(redis_client, settings)
    store.create("feedback", "job-1")
    calls = JobCalls.shared(store, "job-1", settings)
    assert [p.name for p in calls.chain("feedback")] == ["openai", "deepseek"]
    redis_client.hset(settings.keys.llm_spend_day(utc_day()), "cluster", 0.02)
    assert [p.name for p in calls.chain("feedback")] == ["deepseek", "openai"]
