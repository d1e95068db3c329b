"""Settings: the only place the environment (and ``.env``) is read.

Every other module receives a :class:`Settings` object. Secrets are ``SecretStr`` so that they
never appear in a repr, a log line, an error or CLI output.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from gabay.errors import ConfigError, describe_validation
from gabay.keys import Keys
from gabay.limits.rates import Rate, parse_rate

#: Announced shutdown dates of model names we may be configured with.
MODEL_SHUTDOWN_DATES = {"gpt-4o-mini": dt.date(2027, 1, 14), "gpt-4o-mini-2024-07-18": dt.date(2027, 1, 14)}
#: Retired names that now fail with HTTP 400.
RETIRED_MODELS = {"deepseek-chat": "deepseek-flash", "deepseek-reasoner": "deepseek-flash"}
# -- alerts (gabay/alerts) --
#: The alert rules, by the names ALERT_DISABLED_RULES accepts (each is a class in gabay/alerts).
ALERT_RULE_NAMES = ("dead_letter", "failure_rate", "queue_depth", "queue_age", "no_consumer",
                    "redis_unreachable", "llm_spend", "missed_schedule",
                    "backup_failed",  # backup_failed: gabay/alerts/backup_failed.py
                    "provider_quota")  # provider_quota: gabay/alerts/provider_quota.py


def default_data_dir() -> Path:
    """Per-user data directory, shared by every gabay command of this user on this machine."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gabay"


class Settings(BaseSettings):
    """All configuration of gabay, with the seed's variable names."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # LLM providers
    openai_api_key: SecretStr | None = None
    deepseek_api_key: SecretStr | None = None
    openai_chat_model: str = "gpt-4o-mini"
    openai_feedback_model: str | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    deepseek_base_url: str = "https://api.deepseek.com"
    deepseek_model: str = "deepseek-flash"
    llm_timeout: float = Field(60.0, gt=0, description="overall deadline of one LLM call, seconds")
    llm_prices: dict[str, tuple[float, float, float]] = Field(
        default_factory=dict,
        description="model -> (input, cached input, output) USD per 1M tokens; overrides the table",
    )
    # -- LLM spend and provider limits (gabay/llm, gabay/limits/provider_budget.py) --
    llm_openai_rpm: int = Field(500, ge=0, description="requests/min per OpenAI model and key "
                                "until its headers say otherwise; 0: not limited")
    llm_openai_tpm: int = Field(200_000, ge=0, description="tokens/min per OpenAI model and key")
    llm_deepseek_rpm: int = Field(0, ge=0, description="requests/min per DeepSeek model and key")
    llm_deepseek_tpm: int = Field(0, ge=0, description="tokens/min per DeepSeek model and key")
    llm_deepseek_concurrency: int = Field(16, ge=0, description="DeepSeek calls in flight per key")
    llm_budget_headroom: float = Field(0.97, gt=0, le=1, description="share of each limit used")
    llm_budget_wait_ms: float = Field(2_000, ge=0, description="longest in-thread wait for room")
    llm_job_token_budget: int = Field(60_000, ge=0, description="tokens one job may spend; 0: none")
    llm_reasks: int = Field(1, ge=0, le=3, description="re-asks of a schema-invalid answer")
    llm_daily_budget_usd: float | None = Field(None, gt=0, description="cluster LLM spend per UTC day")
    llm_daily_budget_policy: Literal["defer", "cheaper"] = Field(
        "defer", description="over the daily budget: defer paid calls to the next day, or use the "
                             "cheaper provider first")
    deepseek_holidays: list[dt.date] = Field(
        default_factory=list, description="Chinese public holidays: DeepSeek off-peak all day")

    # Redis
    redis_url: SecretStr | None = None
    redis_host: str | None = None
    redis_port: int = Field(6379, ge=1, le=65535)
    redis_password: SecretStr | None = None
    redis_db: int = Field(0, ge=0, le=15)
    embedded_redis: Literal["auto", "always", "never"] = "auto"
    redis_socket_timeout: float = Field(
        5.0, gt=0.5, le=300, description="seconds a Redis command may take before it fails")
    redis_connect_timeout: float = Field(5.0, gt=0, le=300)
    redis_health_check_interval: int = Field(
        15, ge=0, le=3600, description="seconds idle after which a connection is PINGed before use")
    redis_tls_ca_file: Path | None = Field(None, description="PEM CA certificates of a rediss:// server")
    redis_tls_cert_file: Path | None = Field(None, description="PEM client certificate for rediss://")
    redis_tls_key_file: Path | None = Field(None, description="its key, unless REDIS_TLS_CERT_FILE has it")
    redis_tls_verify: Literal["required", "optional", "none"] = Field(
        "required", description="required: chain and host name; optional: chain only; none: nothing")
    redis_sentinel_password: SecretStr | None = None
    gabay_key_prefix: str = "gabay:"
    gabay_data_dir: Path = Field(default_factory=default_data_dir)

    # Email
    brevo_api_key: SecretStr | None = None
    brevo_base_url: str = "https://api.brevo.com/v3"
    brevo_timeout: float = Field(15.0, gt=0)
    brevo_log_settle_seconds: float = Field(
        120.0, ge=0, le=3600,
        description="seconds after an attempt that may have sent an email before Brevo's email list "
                    "not showing it is taken to mean it was not sent")
    email_sender: str = "no-reply@gabay.example"
    email_sender_name: str = "Gabay"
    email_outbox_dir: Path | None = None

    # Workers
    enable_form_response_worker: bool = True
    form_response_concurrency: int = Field(3, ge=1, le=1000)
    form_response_rate_limit: Annotated[Rate, NoDecode] = Field(default_factory=lambda: parse_rate("10/m"))
    feedback_tenant: Literal["teacher", "form", "none"] = Field(
        "teacher", description="fair share of the feedback worker between teachers (their "
                               "pseudonymous id), exams, or none")
    question_generation_concurrency: int = Field(3, ge=1, le=1000)
    worker_processes: int = Field(2, ge=1, le=64)
    worker_threads: int = Field(8, ge=1, le=256)
    drain_timeout: float = Field(30.0, ge=0, le=3600)
    heartbeat_timeout: float = Field(15.0, ge=2, le=3600, description="seconds")
    idle_fetch_interval: float = Field(
        20.0, gt=0, le=3600, description="seconds an idle consumer waits between fetches while it "
        "hears the queues' wake-ups (a push to an empty queue wakes it at once)")
    monitor_interval: float = Field(30.0, gt=0)
    stuck_after: float = Field(300.0, gt=0, description="seconds of no start with work waiting")
    job_ttl: int = Field(7 * 24 * 3600, ge=60, description="seconds a job record is kept")
    callback_secret: SecretStr | None = None
    log_level: str = "INFO"

    # -- client API: callbacks and HTTP enqueue (gabay/callbacks, gabay/web/enqueue_api.py) --
    callback_max_retries: int = Field(8, ge=0, le=30, description="retries of a result callback "
                                      "(backoff 1 s doubling to 2 min) before it is marked failed")
    api_tokens: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, description="clients of the HTTP enqueue API: name:sha256-hex-of-token, "
                                          "comma-separated (gabay api-token create NAME)")

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _api_tokens(cls, value: Any) -> Any:
        return parse_api_tokens(value) if isinstance(value, str) else value
    # -- end of client API --

    # Dashboard
    dashboard_username: str = "admin"
    dashboard_password: SecretStr | None = None

    # -- results store (gabay/store) --
    database_url: SecretStr | None = Field(
        None, description="SQLAlchemy URL of the results database (secret: it may hold a password); "
                          "none: an SQLite file in GABAY_DATA_DIR")
    data_retention_days: int | None = Field(
        None, ge=1, le=36500,
        description="days after which stored submissions are anonymised; none: kept until forgotten")

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: SecretStr | None) -> SecretStr | None:
        scheme = value.get_secret_value().partition("://")[0] if value is not None else "sqlite"
        if scheme not in {"postgresql", "postgres", "postgresql+psycopg", "sqlite", "sqlite+pysqlite"}:
            raise ValueError("must be a postgresql:// (psycopg 3) or sqlite:/// URL")
        return value

    # -- alerts (gabay/alerts) --
    alert_email_to: str | None = Field(
        None, description="operators' address(es) for alert emails, comma-separated")
    slack_webhook_url: SecretStr | None = Field(None, description="Slack incoming webhook (secret)")
    alert_webhook_url: SecretStr | None = Field(
        None, description="generic JSON webhook for alerts (secret: such URLs often hold a token)")
    alert_webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key of the alert webhook's X-Gabay-Signature header")
    alert_dashboard_url: str | None = Field(None, description="dashboard link put in alerts")
    alert_interval: float = Field(10.0, gt=0, le=3600, description="seconds between evaluations")
    alert_cooldown: float = Field(
        900.0, ge=0, le=7 * 24 * 3600,
        description="seconds after a firing alert before the same rule and subject fire again")
    alert_disabled_rules: Annotated[frozenset[str], NoDecode] = Field(
        default_factory=frozenset, description="comma-separated rule names that never fire")
    alert_dead_letter_window: float = Field(
        3600.0, gt=0, description="seconds a dead letter keeps its queue's incident open")
    alert_failure_rate: float = Field(0.2, gt=0, le=1, description="failed share of an actor's runs")
    alert_failure_min_runs: int = Field(20, ge=1, description="runs in the window before the rate counts")
    alert_failure_window: float = Field(600.0, ge=60, le=7200, description="seconds (whole minutes)")
    alert_queue_depth: int = Field(1000, ge=1, description="waiting messages of one queue")
    alert_queue_age: float = Field(900.0, gt=0, description="seconds the oldest waiting message waited")
    alert_no_consumer_after: float = Field(
        60.0, ge=0, description="seconds a queue has work and no live consumer before it alerts")
    alert_redis_down_after: float = Field(
        30.0, ge=0, description="seconds a process cannot reach Redis before it alerts by itself")
    alert_llm_daily_budget_usd: float | None = Field(
        None, gt=0, description="LLM spend per UTC day; none: the rule is off")
    alert_http_timeout: float = Field(10.0, gt=0, le=120, description="seconds per webhook request")
    alert_http_retries: int = Field(3, ge=0, le=10, description="retries of a 429, 5xx or lost request")

    @field_validator("alert_disabled_rules", mode="before")
    @classmethod
    def _alert_rule_names(cls, value: Any) -> frozenset[str]:
        names = value.split(",") if isinstance(value, str) else list(value or ())
        cleaned = frozenset(str(name).strip() for name in names if str(name).strip())
        unknown = sorted(cleaned - set(ALERT_RULE_NAMES))
        if unknown:
            raise ValueError(f"unknown rule(s) {', '.join(unknown)}; known: {', '.join(ALERT_RULE_NAMES)}")
        return cleaned

    @field_validator("alert_email_to")
    @classmethod
    def _alert_addresses(cls, value: str | None) -> str | None:
        if value is None:
            return None
        addresses = [a.strip() for a in value.split(",") if a.strip()]
        for number, address in enumerate(addresses, 1):
            local, _, domain = address.partition("@")
            malformed = not local or "@" in domain or "." not in domain.strip(".")
            if malformed or any(c in address for c in " <>\t"):
                raise ValueError(f"address {number} is not a plain email address (name@domain)")
        return ",".join(addresses) or None

    # -- scheduled jobs (gabay/schedules) --
    schedules_file: Path | None = Field(
        None, description="TOML file declaring the scheduled jobs; none: no schedules")
    schedule_timezone: str = Field(
        "Asia/Manila", description="IANA time zone of the schedules that name none")
    schedule_lease_seconds: float = Field(
        10.0, ge=0.5, le=300, description="seconds the schedules' leader holds its lease unrenewed")
    schedule_tick_seconds: float = Field(
        0.5, ge=0.05, le=10, description="seconds between the leader's checks for due schedules")
    schedule_defaults: bool = Field(
        True, description="also run gabay's default schedules (nightly-backup, ...); false: only "
                          "those of SCHEDULES_FILE")
    schedule_overrides: dict[str, str] = Field(
        default_factory=lambda: schedule_variables(),
        description="the SCHEDULES_<NAME>_<FIELD> variables of the environment and .env")

    @field_validator("schedule_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        import zoneinfo  # imported here: the scheduled jobs keep to their block

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Manila)") from None
        return value

    # -- exam analytics (gabay/actors/analytics.py) --
    analytics_debounce_seconds: float = Field(
        30.0, ge=0, le=3600,
        description="seconds an exam's analytics waits after a graded submission, gathering the "
                    "submissions that follow into one recomputation")

    # -- teacher reports and digests (gabay/reports, gabay/digests) --
    reports_dir: Path | None = Field(
        None, description="directory of the exams' PDF reports; none: reports/ in GABAY_DATA_DIR")
    report_easy_above: float = Field(
        0.9, gt=0, le=1, description="an item whose difficulty (share correct) is above this is "
                                     "flagged too easy in the report")
    report_hard_below: float = Field(
        0.2, ge=0, lt=1, description="an item whose difficulty is below this is flagged too hard")
    digest_hour: int = Field(
        7, ge=0, le=23, description="local hour (teacher's zone) from which the digest of the "
                                    "period just ended goes out")

    # -- autoscaling (gabay/cluster/autoscale.py, gabay/ops/autoscaler.py) --
    autoscale_min_processes: int = Field(
        1, ge=0, le=256, description="fewest worker processes the desired count asks for")
    autoscale_max_processes: int = Field(
        8, ge=1, le=256, description="most worker processes the desired count asks for")
    autoscale_interval: float = Field(
        5.0, gt=0, le=300, description="seconds between the autoscaler's looks at the queues")
    autoscale_up_after: float = Field(
        15.0, ge=0, le=3600, description="seconds the need for more processes must hold before growing")
    autoscale_down_after: float = Field(
        120.0, ge=0, le=86400, description="seconds of less need before shrinking (to the peak of "
                                           "that window)")
    autoscale_cooldown: float = Field(
        30.0, ge=0, le=3600, description="seconds between two scaling decisions")
    autoscale_up_wait: float = Field(
        2.0, ge=0, le=3600, description="seconds the oldest waiting message must have waited before "
                                        "a backlog counts as need")
    autoscale_default_run_seconds: float = Field(
        10.0, gt=0, le=86400, description="a rate-limited actor's run time until its average is known")
    # -- end of autoscaling --

    # -- memory-based recycling (gabay/middleware/memory_limit.py) --
    worker_max_memory: int | None = Field(
        None, ge=1, description="resident memory (bytes; 512M, 1G ...) past which a worker process "
                                "drains and is replaced; none: no limit")
    worker_memory_check_interval: float = Field(
        5.0, ge=0.05, le=3600, description="seconds between two reads of a worker process's RSS")

    @field_validator("worker_max_memory", mode="before")
    @classmethod
    def _parse_memory_size(cls, value: Any) -> Any:
        """``1G``, ``512M``, ``300k`` or bytes (powers of 1024, as PM2's max_memory_restart)."""
        if not isinstance(value, str):
            return value
        text = value.strip().upper().removesuffix("B")
        if not text:
            return None
        factor = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1], 1)
        number = text[:-1] if factor > 1 else text
        try:
            size = float(number) * factor
        except ValueError:
            raise ValueError(f"invalid size {value!r}: expected bytes or N[K|M|G], such as 1G") from None
        return int(size)
    # -- end of memory-based recycling --

    # -- privacy, tracing (gabay/cluster/claim_check.py, gabay/tracing) --
    claim_check_ttl: int = Field(
        8 * 24 * 3600, ge=7 * 24 * 3600 + 3600, le=365 * 24 * 3600,
        description="seconds a message's payload is kept in Redis (the message carries only a "
                    "reference); longer than the retries and the 7 days of the dead-letter queue")
    tracing_enabled: bool = Field(False, description="OpenTelemetry traces of every job")
    otel_exporter_otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP collector (such as http://127.0.0.1:4318); none: the "
                          "OpenTelemetry default")
    otel_service_name: str = "gabay"
    # -- end of privacy, tracing --

    # -- backups (gabay/backups) --
    backup_dir: Path | None = Field(
        None, description="directory of the backups; none: GABAY_DATA_DIR/backups")
    backup_keep_daily: int = Field(
        7, ge=1, le=3650, description="days whose newest backup is kept (the latest days with one)")
    backup_keep_weekly: int = Field(
        4, ge=0, le=520, description="ISO weeks whose newest backup is kept, beyond the daily ones")
    backup_redis: bool = Field(
        True, description="also snapshot Redis (BGSAVE and a copy of its RDB file, which must be "
                          "readable on the backup's host)")
    backup_timeout: float = Field(
        3600.0, gt=0, le=24 * 3600, description="seconds pg_dump, or Redis's BGSAVE, may take")
    # -- end of backups --

    @field_validator("form_response_rate_limit", mode="before")
    @classmethod
    def _parse_rate(cls, value: Any) -> Rate:
        return parse_rate(value)

    @field_serializer("form_response_rate_limit")
    def _rate_as_text(self, value: Rate) -> str:
        return str(value)

    @field_validator("gabay_key_prefix")
    @classmethod
    def _prefix_ends_with_colon(cls, value: str) -> str:
        if not value or not value.endswith(":"):
            raise ValueError("must be non-empty and end with ':' (such as 'gabay:')")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value.upper()

    @model_validator(mode="after")
    def _retired_models(self) -> Settings:
        if self.deepseek_model in RETIRED_MODELS:
            raise ValueError(
                f"DEEPSEEK_MODEL={self.deepseek_model!r} was retired by DeepSeek on 2026-07-24; "
                f"use {RETIRED_MODELS[self.deepseek_model]!r}"
            )
        return self

    @property
    def feedback_model(self) -> str:
        return self.openai_feedback_model or self.openai_chat_model

    @property
    def outbox_dir(self) -> Path:
        return self.email_outbox_dir or self.gabay_data_dir / "outbox"

    @property
    def report_dir(self) -> Path:
        """Where the exams' PDF reports are written (``REPORTS_DIR``, else under the data directory)."""
        return self.reports_dir or self.gabay_data_dir / "reports"

    @property
    def backups_dir(self) -> Path:
        """Where backups are written (``BACKUP_DIR``, default ``GABAY_DATA_DIR/backups``)."""
        return self.backup_dir or self.gabay_data_dir / "backups"

    @property
    def redis_configured(self) -> bool:
        """True when the operator named a Redis; then the embedded one is never started."""
        return self.redis_url is not None or self.redis_host is not None

    @property
    def keys(self) -> Keys:
        """The Redis keys of this deployment (under ``GABAY_KEY_PREFIX``)."""
        return Keys(self.gabay_key_prefix)

    def model_warnings(self, today: dt.date | None = None) -> list[str]:
        """Warnings about configured models that are near or past their shutdown date."""
        today = today or dt.date.today()
        warnings = []
        for name in {self.openai_chat_model, self.feedback_model}:
            shutdown = MODEL_SHUTDOWN_DATES.get(name)
            if shutdown and (shutdown - today).days <= 90:
                when = "was shut down" if today >= shutdown else "shuts down"
                warnings.append(
                    f"OpenAI model {name!r} {when} on {shutdown.isoformat()}; "
                    "set OPENAI_CHAT_MODEL / OPENAI_FEEDBACK_MODEL to its replacement (gpt-6-luna)"
                )
        return sorted(warnings)


# -- scheduled jobs (gabay/schedules) --
#: Variables ``SCHEDULES_<NAME>_<FIELD>`` override one field of one schedule (gabay.schedules.config).
SCHEDULE_VARIABLE_PREFIX = "SCHEDULES_"


def schedule_variables(env_file: Path = Path(".env")) -> dict[str, str]:
    """The schedule overrides: ``SCHEDULES_*`` variables of ``.env``, then of the environment (wins).

    ``SCHEDULES_FILE`` is a plain setting, not an override.
    """
    from dotenv import dotenv_values  # imported here: the scheduled jobs keep to their block

    found: dict[str, str] = {}
    if env_file.is_file():
        found.update({k.upper(): v for k, v in dotenv_values(env_file).items() if v is not None})
    found.update({k.upper(): v for k, v in os.environ.items()})
    return {k: v for k, v in sorted(found.items())
            if k.startswith(SCHEDULE_VARIABLE_PREFIX) and k != "SCHEDULES_FILE"}


def parse_api_tokens(text: str) -> dict[str, str]:
    """``ci:3f2a...,lms:9b1c...`` -> {client name: SHA-256 hex of its token}; never echoes a value."""
    tokens: dict[str, str] = {}
    for number, item in enumerate((i.strip() for i in text.split(",") if i.strip()), 1):
        name, _, digest = item.partition(":")
        digest = digest.strip().lower().removeprefix("sha256=")
        name = name.strip()
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError(f"entry {number} is not name:<64 hex digits of the token's SHA-256>")
        tokens[name] = digest
    return tokens


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment and ``.env``; a wrong value raises ConfigError.

    The error is one line naming each bad variable; values of secrets are never echoed.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except SettingsError as exc:
        # Raised when a structured value (such as LLM_PRICES) is not valid JSON.
        field = str(exc).split('"')[1] if '"' in str(exc) else "settings"
        raise ConfigError(f"invalid configuration: {field.upper()}: not valid JSON") from None


def _describe(exc: ValidationError) -> str:
    """``invalid configuration: REDIS_PORT: Input should be a valid integer; ...``."""
    return "invalid configuration: " + describe_validation(exc, subject="settings", names="variable")
