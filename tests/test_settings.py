"""Settings: the seed's variable names, defaults, validation and secrecy."""

from __future__ import annotations

import datetime as dt

import pytest

from gabay.errors import ConfigError
from gabay.limits.rates import Rate, parse_rate
from gabay.settings import load_settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> pytest.MonkeyPatch:
    """A clean environment and working directory (no stray .env)."""
    monkeypatch.chdir(tmp_path)
    for name in ("REDIS_URL", "GABAY_DATA_DIR", "HEARTBEAT_TIMEOUT", "DRAIN_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_follow_the_design(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.openai_chat_model == "gpt-4o-mini"
    assert settings.feedback_model == "gpt-4o-mini"
    assert settings.deepseek_model == "deepseek-flash"
    assert settings.form_response_concurrency == 3
    assert settings.form_response_rate_limit == Rate(10, 60.0)
    assert settings.question_generation_concurrency == 3
    assert settings.drain_timeout == 30.0
    assert settings.monitor_interval == 30.0
    assert settings.enable_form_response_worker is True
    assert settings.gabay_key_prefix == "gabay:"
    assert settings.outbox_dir == settings.gabay_data_dir / "outbox"
    assert not settings.redis_configured


def test_environment_overrides_with_the_seed_names(env: pytest.MonkeyPatch) -> None:
    env.setenv("FORM_RESPONSE_RATE_LIMIT", "5/2s")
    env.setenv("FORM_RESPONSE_CONCURRENCY", "4")
    env.setenv("ENABLE_FORM_RESPONSE_WORKER", "false")
    env.setenv("OPENAI_FEEDBACK_MODEL", "gpt-6-luna")
    env.setenv("REDIS_HOST", "redis.internal")
    settings = load_settings()
    assert settings.form_response_rate_limit == Rate(5, 2.0)
    assert settings.form_response_concurrency == 4
    assert settings.enable_form_response_worker is False
    assert settings.feedback_model == "gpt-6-luna"
    assert settings.redis_configured


def test_dotenv_file_is_read(env: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / ".env").write_text("QUESTION_GENERATION_CONCURRENCY=7\n")
    assert load_settings().question_generation_concurrency == 7


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FORM_RESPONSE_RATE_LIMIT", "ten"),
        ("FORM_RESPONSE_RATE_LIMIT", "0/m"),
        ("FORM_RESPONSE_CONCURRENCY", "0"),
        ("REDIS_PORT", "abc"),
        ("DRAIN_TIMEOUT", "-1"),
        ("DEEPSEEK_MODEL", "deepseek-chat"),
        ("LLM_PRICES", "{not json"),
    ],
)
def test_a_wrong_value_is_one_line_naming_the_variable(
    env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    env.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert name in message
    assert "\n" not in message


def test_secrets_never_appear_in_repr_dump_or_errors(env: pytest.MonkeyPatch) -> None:
    env.setenv("OPENAI_API_KEY", "sk-very-secret")
    env.setenv("BREVO_API_KEY", "xkeysib-very-secret")
    env.setenv("REDIS_URL", "redis://:hunter2@localhost:6379/0")
    settings = load_settings()
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert "very-secret" not in text
        assert "hunter2" not in text
    env.setenv("REDIS_PORT", "not-a-port")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "very-secret" not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "rate"),
    [("10/m", Rate(10, 60)), ("3/s", Rate(3, 1)), ("100/h", Rate(100, 3600)),
     ("5/2s", Rate(5, 2)), ("7/0.5s", Rate(7, 0.5)), (" 10 / m ", Rate(10, 60))],
)
def test_rates_accept_every_documented_form(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["ten", "10", "10/d", "10/m/s", "-1/m", "0/s", "1/0s"])
def test_rates_reject_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


def test_warns_as_gpt_4o_mini_nears_its_shutdown(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.model_warnings(dt.date(2026, 6, 1)) == []
    [warning] = settings.model_warnings(dt.date(2026, 11, 29))
    assert "2027-01-14" in warning
    assert "was shut down" in settings.model_warnings(dt.date(2027, 2, 1))[0]
    env.setenv("OPENAI_CHAT_MODEL", "gpt-6-luna")
    assert load_settings().model_warnings(dt.date(2026, 11, 29)) == []


def test_every_wrong_variable_is_named_upper_case_on_one_line(env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_PORT", "abc")
    env.setenv("FORM_RESPONSE_CONCURRENCY", "0")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert str(raised.value) == (
        "invalid configuration: REDIS_PORT: Input should be a valid integer, unable to parse string as "
        "an integer; FORM_RESPONSE_CONCURRENCY: Input should be greater than or equal to 1"
    )
