"""LLM providers against fake OpenAI and DeepSeek servers: real SDK, real HTTP on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from gabay.errors import ProviderQuotaExhausted, ProviderRejected, ProviderUnavailable
from gabay.jobs import LLMCall
from gabay.llm.chat import ChatProvider
from gabay.llm.pricing import cost_usd
from gabay.llm.providers import complete_with_fallback, provider_chain
from gabay.settings import Settings, load_settings
from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer

KEY = "sk-test-key"


@pytest.fixture
def deepseek() -> Iterator[FakeLLMServer]:
    with fake.running("deepseek", api_key=KEY) as server:
        yield server


@pytest.fixture
def openai_server() -> Iterator[FakeLLMServer]:
    with fake.running("openai", api_key=KEY) as server:
        yield server


def settings_for(deepseek: FakeLLMServer | None = None, openai: FakeLLMServer | None = None,
                 **overrides: object) -> Settings:
    values: dict[str, object] = {"llm_timeout": 5.0, **overrides}
    if deepseek is not None:
        values.update(deepseek_api_key=KEY, deepseek_base_url=deepseek.base_url)
    if openai is not None:
        values.update(openai_api_key=KEY, openai_base_url=openai.base_url)
    return load_settings(**values)


def provider(server: FakeLLMServer, **overrides: object) -> ChatProvider:
    settings = settings_for(**{server.flavour if server.flavour == "deepseek" else "openai": server},
                            **overrides)
    name = "deepseek" if server.flavour == "deepseek" else "openai"
    model = settings.deepseek_model if name == "deepseek" else settings.openai_chat_model
    return ChatProvider(name, model, api_key=SecretStr(KEY), base_url=server.base_url, settings=settings)


def test_deepseek_call_uses_json_mode_without_thinking_and_records_cost(deepseek: FakeLLMServer) -> None:
    deepseek.script(fake.answer({"questions": []}, prompt_tokens=1000, cached_tokens=400,
                                completion_tokens=200))
    completion = provider(deepseek).complete_json("Reply in JSON.", "hello", stage="generation")

    assert completion.data == {"questions": []}
    body = deepseek.bodies()[0]
    assert body["response_format"] == {"type": "json_object"}
    assert body["thinking"] == {"type": "disabled"}
    assert body["model"] == "deepseek-flash"
    assert "max_tokens" in body
    assert deepseek.requests[0]["path"] == "/chat/completions"
    call = completion.call
    assert (call.provider, call.model, call.ok) == ("deepseek", "deepseek-flash", True)
    assert (call.prompt_tokens, call.cached_tokens, call.completion_tokens) == (1000, 400, 200)
    assert call.cost_usd == pytest.approx(cost_usd(load_settings(), "deepseek-flash", 1000, 400, 200))
    assert call.cost_usd > 0 and call.duration_ms > 0


def test_openai_call_reads_cached_tokens_from_prompt_details(openai_server: FakeLLMServer) -> None:
    openai_server.script(fake.answer({"ok": 1}, prompt_tokens=2000, cached_tokens=1024,
                                     completion_tokens=100))
    completion = provider(openai_server).complete_json("Reply in JSON.", "x", stage="validation")

    body = openai_server.bodies()[0]
    assert openai_server.requests[0]["path"] == "/v1/chat/completions"
    assert "thinking" not in body and "max_completion_tokens" in body
    assert completion.call.cached_tokens == 1024
    # (2000 - 1024) * 0.15 + 1024 * 0.075 + 100 * 0.60, per million tokens
    assert completion.call.cost_usd == pytest.approx((976 * 0.15 + 1024 * 0.075 + 100 * 0.60) / 1e6)


@pytest.mark.parametrize(("behaviour", "error", "reason"), [
    (fake.rate_limited(retry_after_ms="10"), ProviderUnavailable, "HTTP 429"),
    (fake.rate_limited(retry_after="0.01"), ProviderUnavailable, "HTTP 429"),
    (fake.server_error(500), ProviderUnavailable, "HTTP 500"),
    (fake.server_error(503), ProviderUnavailable, "HTTP 503"),
    (fake.blank(), ProviderUnavailable, "blank JSON"),
    (fake.malformed(), ProviderUnavailable, "invalid JSON"),
    (fake.insufficient_resource(), ProviderUnavailable, "insufficient_system_resource"),
    (fake.unauthorized(), ProviderRejected, "HTTP 401"),
    (fake.bad_request(), ProviderRejected, "HTTP 400"),
    (fake.payment_required(), ProviderQuotaExhausted, "HTTP 402"),
    (fake.unprocessable_text(), ProviderRejected, "HTTP 422"),
    (fake.insufficient_quota(), ProviderQuotaExhausted, "quota exhausted"),
])
def test_each_failure_maps_to_unavailable_or_rejected(deepseek: FakeLLMServer, behaviour: fake.Behaviour,
                                                      error: type[Exception], reason: str) -> None:
    deepseek.default = behaviour
    with pytest.raises(error) as raised:
        provider(deepseek).complete_json("Reply in JSON.", "x", stage="generation")

    assert "deepseek" in str(raised.value) and reason in str(raised.value)
    assert KEY not in str(raised.value)
    call = raised.value.call
    assert isinstance(call, LLMCall) and call.ok is False and call.error == str(raised.value)


def test_transient_errors_are_retried_by_the_sdk_honouring_retry_after(deepseek: FakeLLMServer) -> None:
    deepseek.script(fake.rate_limited(retry_after_ms="10"), fake.server_error(), fake.answer({"a": 1}))
    completion = provider(deepseek).complete_json("Reply in JSON.", "x", stage="generation")

    assert completion.data == {"a": 1}
    assert [r["headers"].get("x-stainless-retry-count") for r in deepseek.requests] == ["0", "1", "2"]


def test_rejections_are_not_retried(deepseek: FakeLLMServer) -> None:
    deepseek.default = fake.unauthorized()
    with pytest.raises(ProviderRejected):
        provider(deepseek).complete_json("Reply in JSON.", "x", stage="generation")
    assert len(deepseek.requests) == 1


def test_json_schema_is_rejected_by_the_deepseek_fake_as_by_deepseek(deepseek: FakeLLMServer) -> None:
    import openai

    client = openai.OpenAI(api_key=KEY, base_url=deepseek.base_url, max_retries=0)
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="deepseek-flash", messages=[{"role": "user", "content": "x"}],
                                       response_format={"type": "json_schema", "json_schema": {
                                           "name": "x", "schema": {"type": "object"}}})
    assert "unavailable" in raised.value.message


def test_a_wrong_key_is_rejected_without_showing_the_key(deepseek: FakeLLMServer,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = settings_for(deepseek=deepseek)
    wrong = ChatProvider("deepseek", "deepseek-flash", api_key=SecretStr("sk-wrong-secret-1234"),
                         base_url=deepseek.base_url, settings=settings)
    with pytest.raises(ProviderRejected) as raised:
        wrong.complete_json("Reply in JSON.", "x", stage="generation")

    assert "HTTP 401" in str(raised.value)
    assert "sk-wrong-secret-1234" not in str(raised.value) and "1234" not in str(raised.value)
    assert "sk-wrong-secret-1234" not in caplog.text


@pytest.mark.parametrize("behaviour", [fake.trickle(seconds=6, interval=0.1), fake.hang(seconds=6)],
                         ids=["trickle", "hang"])
def test_the_overall_deadline_holds_even_when_the_server_trickles(deepseek: FakeLLMServer,
                                                                  behaviour: fake.Behaviour) -> None:
    deepseek.script(behaviour)
    slow = provider(deepseek, llm_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="did not answer within LLM_TIMEOUT=1 s"):
        slow.complete_json("Reply in JSON.", "x", stage="generation")
    assert time.monotonic() - started < 4.0  # the trickle alone would last 6 s


def test_drafting_falls_back_from_deepseek_to_openai(deepseek: FakeLLMServer,
                                                     openai_server: FakeLLMServer) -> None:
    deepseek.default = fake.server_error()
    openai_server.script(fake.answer({"questions": ["from openai"]}))
    chain = provider_chain(settings_for(deepseek, openai_server), "draft")
    calls: list[LLMCall] = []

    completion = complete_with_fallback(chain, "Reply in JSON.", "x", stage="generation", record=calls.append)

    assert [p.name for p in chain] == ["deepseek", "openai"]
    assert completion.data == {"questions": ["from openai"]}
    assert [(c.provider, c.ok) for c in calls] == [("deepseek", False), ("openai", True)]
    assert "HTTP 500" in (calls[0].error or "")


def test_validation_falls_back_from_openai_to_deepseek(deepseek: FakeLLMServer,
                                                       openai_server: FakeLLMServer) -> None:
    openai_server.default = fake.blank()
    deepseek.script(fake.answer({"verdicts": []}))
    chain = provider_chain(settings_for(deepseek, openai_server), "validate")
    calls: list[LLMCall] = []

    completion = complete_with_fallback(chain, "Reply in JSON.", "x", stage="validation", record=calls.append)

    assert [p.name for p in chain] == ["openai", "deepseek"]
    assert completion.data == {"verdicts": []}
    assert [(c.provider, c.ok) for c in calls] == [("openai", False), ("deepseek", True)]


def test_a_rejection_stops_the_chain_at_once(deepseek: FakeLLMServer, openai_server: FakeLLMServer) -> None:
    deepseek.default = fake.unauthorized()
    chain = provider_chain(settings_for(deepseek, openai_server), "draft")
    calls: list[LLMCall] = []
    with pytest.raises(ProviderRejected, match="deepseek rejected the request: HTTP 401"):
        complete_with_fallback(chain, "Reply in JSON.", "x", stage="generation", record=calls.append)
    assert openai_server.requests == []
    assert [(c.provider, c.ok) for c in calls] == [("deepseek", False)]


def test_when_every_provider_fails_the_error_names_each(deepseek: FakeLLMServer,
                                                        openai_server: FakeLLMServer) -> None:
    deepseek.default = fake.server_error()
    openai_server.default = fake.malformed()
    chain = provider_chain(settings_for(deepseek, openai_server), "draft")
    with pytest.raises(ProviderUnavailable, match="every provider failed") as raised:
        complete_with_fallback(chain, "Reply in JSON.", "x", stage="generation", record=lambda c: None)
    assert "deepseek unavailable" in str(raised.value) and "openai returned invalid JSON" in str(raised.value)


def test_provider_chain_order_by_purpose_and_keys() -> None:
    both = load_settings(openai_api_key="sk-a", deepseek_api_key="sk-b", openai_feedback_model="gpt-6-luna")
    assert [p.name for p in provider_chain(both, "draft")] == ["deepseek", "openai"]
    assert [p.name for p in provider_chain(both, "validate")] == ["openai", "deepseek"]
    feedback = provider_chain(both, "feedback")
    assert [(p.name, p.model) for p in feedback] == [("openai", "gpt-6-luna"), ("deepseek", "deepseek-flash")]
    only_openai = load_settings(openai_api_key="sk-a")
    assert [p.name for p in provider_chain(only_openai, "draft")] == ["openai"]
    only_deepseek = load_settings(deepseek_api_key="sk-b")
    assert [p.name for p in provider_chain(only_deepseek, "validate")] == ["deepseek"]
    assert provider_chain(load_settings(), "draft") == []
    assert "sk-a" not in repr(provider_chain(both, "draft"))


def test_deepseek_prices_follow_peak_hours() -> None:
    settings = load_settings()
    off_peak = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    peak = dt.datetime(2026, 11, 30, 7, 30, tzinfo=dt.UTC)
    million = 1_000_000
    assert cost_usd(settings, "deepseek-flash", million, 0, 0, at=off_peak) == pytest.approx(0.15)
    assert cost_usd(settings, "deepseek-flash", million, 0, 0, at=peak) == pytest.approx(0.30)
    assert cost_usd(settings, "deepseek-v4-pro", 0, 0, million, at=peak) == pytest.approx(1.20)
    assert cost_usd(settings, "deepseek-flash", million, million, 0, at=off_peak) == pytest.approx(0.003)


def test_prices_can_be_overridden_and_unknown_models_cost_nothing_with_one_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(llm_prices={"gpt-6-luna": (1.0, 0.5, 2.0)})
    assert cost_usd(settings, "gpt-6-luna", 1_000_000, 0, 1_000_000) == pytest.approx(3.0)
    assert cost_usd(settings, "gpt-4o-mini", 1_000_000, 0, 0) == pytest.approx(0.15)
    with caplog.at_level(logging.WARNING, logger="gabay.llm.pricing"):
        assert cost_usd(settings, "mystery-model-7", 1000, 0, 1000) == 0
        assert cost_usd(settings, "mystery-model-7", 1000, 0, 1000) == 0
    assert caplog.text.count("mystery-model-7") == 1
