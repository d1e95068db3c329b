"""The shared provider budget: RPM/TPM/concurrency per provider x model x key in Redis, settled to
real usage, limits learned from headers, a 429 held cluster-wide, fail closed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from gabay.actors.questions import generate_questions
from gabay.cluster.stats import QueueStats
from gabay.errors import ProviderHeld
from gabay.jobs import JobRecord, JobStatus, JobStore, LLMCall
from gabay.keys import Keys
from gabay.limits.provider_budget import (
    Limits,
    ProviderBudget,
    RateHeaders,
    Scope,
    Ticket,
    parse_duration_ms,
)
from gabay.llm.chat import ChatProvider
from gabay.llm.providers import complete_with_fallback, provider_chain
from gabay.settings import Settings, load_settings
from tests.fakes import llm_server as fake
from tests.support.polling import wait_for

KEY = "sk-test-key"
SCOPE = Scope.of("openai", "gpt-4o-mini", KEY)


@pytest.fixture
def budget(redis_client: redis.Redis, settings: Settings) -> ProviderBudget:
    return ProviderBudget(redis_client, settings.keys, headroom=1.0, wait_ms=0)


@pytest.fixture
def servers() -> Iterator[tuple[fake.FakeLLMServer, fake.FakeLLMServer]]:
    with fake.running("deepseek", api_key=KEY) as deepseek, \
            fake.running("openai", api_key=KEY) as openai_server:
        yield deepseek, openai_server


def test_reset_durations_and_headers_are_read_as_providers_send_them() -> None:
    assert [parse_duration_ms(v) for v in ("1s", "6m0s", "20ms", "1.5", "2m30.5s", "", None)] == [
        1000, 360_000, 20, 1500, 150_500, None, None]
    headers = RateHeaders.parse({"X-RateLimit-Limit-Tokens": "150000",
                                 "x-ratelimit-remaining-tokens": "149984",
                                 "x-ratelimit-limit-requests": "60", "x-ratelimit-reset-tokens": "6m0s",
                                 "x-ratelimit-reset-requests": "1s"})
    assert headers == RateHeaders(60, 150_000, None, 149_984, 360_000)
    assert RateHeaders.parse({"retry-after": "3", "x-ratelimit-reset-tokens": "9s"}).reset_ms == 3000


def test_tokens_are_reserved_then_settled_to_the_real_usage(budget: ProviderBudget) -> None:
    limits = Limits(rpm=100, tpm=1000)
    first = budget.acquire(SCOPE, limits, 600)
    with pytest.raises(ProviderHeld) as held:
        budget.acquire(SCOPE, limits, 600)  # 400 left: 200 more tokens take 12 s to refill
    assert 11_000 <= held.value.retry_in_ms <= 12_100
    budget.settle(first, 100)  # it used 100, not 600: 500 come back
    budget.acquire(SCOPE, limits, 600)
    assert budget.state(SCOPE)["tokens"] == pytest.approx(300, abs=5)


def test_the_limits_the_headers_state_replace_the_configured_ones(budget: ProviderBudget) -> None:
    ticket = budget.acquire(SCOPE, Limits(rpm=100, tpm=100_000), 10)
    budget.settle(ticket, 10, RateHeaders(limit_requests=100, limit_tokens=2000, remaining_tokens=500))
    assert budget.state(SCOPE)["limit_tokens"] == 2000
    with pytest.raises(ProviderHeld, match="tpm"):
        budget.acquire(SCOPE, Limits(rpm=100, tpm=100_000), 1000)  # the provider said 500 are left


def test_a_429_holds_the_key_for_every_process_and_the_other_provider_keeps_working(
        servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer], redis_client: redis.Redis,
        settings: Settings) -> None:
    deepseek, openai_server = servers
    openai_server.script(fake.rate_limited(retry_after="2"))
    deepseek.responder = lambda body: {"verdicts": []}
    values = {"openai_api_key": KEY, "openai_base_url": openai_server.base_url, "deepseek_api_key": KEY,
              "deepseek_base_url": deepseek.base_url, "llm_timeout": 5, "llm_budget_wait_ms": 0}
    process_a = provider_chain(load_settings(**values), "validate",
                               ProviderBudget(redis_client, settings.keys, wait_ms=0))
    process_b = provider_chain(load_settings(**values), "validate",
                               ProviderBudget(redis.Redis(**redis_client.connection_pool.connection_kwargs),
                                              settings.keys, wait_ms=0))  # another client, as another process
    calls: list[LLMCall] = []

    completion = complete_with_fallback(process_a, "Reply in JSON.", "x", stage="validation",
                                        record=calls.append)
    assert completion.call.provider == "deepseek"
    with pytest.raises(ProviderHeld) as held:
        process_b[0].complete_json("Reply in JSON.", "x", stage="validation")
    assert 1000 < held.value.retry_in_ms <= 2000
    assert len(openai_server.requests) == 1  # the second process did not call the held key
    complete_with_fallback(process_b, "Reply in JSON.", "x", stage="validation", record=calls.append)
    assert len(deepseek.requests) == 2 and len(openai_server.requests) == 1
    # every provider held: the error says when to come back, for the job to wait
    ProviderBudget(redis_client, settings.keys).hold(process_a[1].scope, 1500, "test")
    with pytest.raises(ProviderHeld, match="every provider is held"):
        complete_with_fallback(process_a, "Reply in JSON.", "x", stage="validation", record=calls.append)


def test_an_unreadable_budget_fails_closed(servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer]) -> None:
    _, openai_server = servers
    dead = redis.Redis(port=1, socket_connect_timeout=0.2)
    settings = load_settings(llm_timeout=5)
    provider = ChatProvider("openai", "gpt-4o-mini", api_key=SecretStr(KEY), base_url=openai_server.base_url,
                            settings=settings, budget=ProviderBudget(dead, Keys()), limits=Limits(10, 1000))
    with pytest.raises(ProviderHeld, match="unreadable"):
        provider.complete_json("Reply in JSON.", "x", stage="validation")
    assert openai_server.requests == []


def test_deepseek_calls_in_flight_stay_under_the_concurrency_cap(
        servers: tuple[fake.FakeLLMServer, fake.FakeLLMServer], redis_client: redis.Redis,
        settings: Settings) -> None:
    deepseek, _ = servers
    deepseek.default = fake.answer({"ok": True}, delay=0.3)
    deepseek.max_concurrency = 2  # above it the fake answers 429, as DeepSeek does
    budget = ProviderBudget(redis_client, settings.keys, wait_ms=10_000)
    provider = ChatProvider("deepseek", "deepseek-flash", api_key=SecretStr(KEY), base_url=deepseek.base_url,
                            settings=load_settings(llm_timeout=10), budget=budget,
                            limits=Limits(concurrency=2))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            provider.complete_json("Reply in JSON.", "x", stage="generation")
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(deepseek.requests) == 6
    assert deepseek.max_inflight == 2 and deepseek.answered_429 == 0


DOCUMENT = Path(__file__).resolve().parent.parent / "examples" / "documents" / "photosynthesis.md"


@pytest.mark.slow
def test_a_stage_waits_for_a_held_provider_without_spending_a_retry(
        start_workers: Callable, redis_client: redis.Redis, settings: Settings) -> None:
    with fake.running("deepseek", api_key=KEY, responder=fake.exam_responder) as deepseek, \
            fake.running("openai", api_key=KEY, responder=fake.exam_responder) as openai_server:
        env = {"DEEPSEEK_API_KEY": KEY, "DEEPSEEK_BASE_URL": deepseek.base_url, "OPENAI_API_KEY": KEY,
               "OPENAI_BASE_URL": openai_server.base_url, "LLM_TIMEOUT": "10", "LLM_BUDGET_WAIT_MS": "0"}
        start_workers(processes=1, threads=2, env=env)
        budget = ProviderBudget(redis_client, settings.keys)
        for scope in (Scope.of("deepseek", "deepseek-flash", KEY), Scope.of("openai", "gpt-4o-mini", KEY)):
            budget.hold(scope, 2500, "test: 429")
        held_until = time.time() + 2.5
        job_id = generate_questions.send({"document": {"id": "photo", "title": "Photosynthesis",
                                                       "text": DOCUMENT.read_text()}, "count": 3})
        store = JobStore(redis_client, settings)

        def done() -> JobRecord | None:
            record = store.get(job_id)
            return record if record.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) else None

        record = wait_for(done, timeout=60, message="the job")
        first_call = min(r["at"] for r in deepseek.requests + openai_server.requests)
    assert record.status is JobStatus.SUCCEEDED, record.error
    assert first_call >= held_until - 0.1  # nothing called a held key
    assert all(c.ok for c in record.calls)  # no failed call, and no retry either:
    counters = settings.keys.counters("retrieval"), settings.keys.counters("generation")
    wait_for(lambda: sum(int(redis_client.hget(k, "deferred") or 0) for k in counters) >= 1,
             timeout=5, message="the held stage's deferral to be counted")
    assert all(int(redis_client.hget(k, "retried") or 0) == 0 for k in counters)
    assert QueueStats(redis_client, settings).recent_failures() == []


def test_a_call_whose_process_died_gives_its_place_back_when_its_ticket_expires(
        redis_client: redis.Redis, settings: Settings) -> None:
    budget = ProviderBudget(redis_client, settings.keys, headroom=1.0, wait_ms=0, ticket_ttl_ms=400)
    scope = Scope.of("deepseek", "deepseek-flash", KEY)
    budget.acquire(scope, Limits(concurrency=1), 100)  # never settled: its process was SIGKILLed
    with pytest.raises(ProviderHeld, match="concurrency"):
        budget.acquire(scope, Limits(concurrency=1), 100)
    ticket = wait_for(lambda: _try(budget, scope), timeout=5, message="the lost place to come back")
    budget.settle(ticket, 50)
    assert budget.state(scope)["inflight"] == 0


def _try(budget: ProviderBudget, scope: Scope) -> Ticket | None:
    try:
        return budget.acquire(scope, Limits(concurrency=1), 100)
    except ProviderHeld:
        return None
