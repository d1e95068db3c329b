"""The alerting of one process, built from the settings: channels, rules, incidents, the tick.

:func:`build_alerting` is what the worker middleware (:mod:`gabay.middleware.alerting`) and the
``gabay alerts`` command use. With no channel configured (no ``ALERT_EMAIL_TO``,
``SLACK_WEBHOOK_URL`` or ``ALERT_WEBHOOK_URL``) ``enabled`` is False and nothing runs.
"""

from __future__ import annotations

import logging
import os
import socket

import redis
import requests

from gabay.alerts.actor_runs import ActorRuns
from gabay.alerts.backup_failed import BackupFailed
from gabay.alerts.channels import Channel, Notifier
from gabay.alerts.dead_letters import DeadLetters
from gabay.alerts.email_channel import EmailChannel
from gabay.alerts.evaluator import Evaluator
from gabay.alerts.failure_rate import FailureRate
from gabay.alerts.http import MAX_RETRY_AFTER
from gabay.alerts.incidents import IncidentStore
from gabay.alerts.missed_schedules import MissedSchedules
from gabay.alerts.provider_quota import ProviderQuota
from gabay.alerts.queue_rules import NoConsumer, QueueAge, QueueDepth
from gabay.alerts.redis_down import NAME as REDIS_DOWN
from gabay.alerts.redis_down import RedisDownWatch
from gabay.alerts.rules import ClusterView, Rule
from gabay.alerts.slack import SlackChannel
from gabay.alerts.spend import DailySpend
from gabay.alerts.webhook import WebhookChannel
from gabay.cluster.clock import RedisClock
from gabay.cluster.outage import Outage
from gabay.cluster.stats import QueueStats
from gabay.cluster.status_reader import StatusReader, redis_problem
from gabay.errors import RedisUnavailable
from gabay.mail.mailer import Mailer, build_mailer
from gabay.mail.render import Address
from gabay.settings import Settings

logger = logging.getLogger(__name__)


def process_name() -> str:
    """``<host>:<pid>``: which process sent an alert (read when sending: workers are forked)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def build_channels(settings: Settings, mailer: Mailer | None = None,
                   session: requests.Session | None = None) -> list[Channel]:
    """Every configured channel: email, Slack, the JSON webhook."""
    session = session or requests.Session()
    timeout, retries = settings.alert_http_timeout, settings.alert_http_retries
    channels: list[Channel] = []
    recipients = [a.strip() for a in (settings.alert_email_to or "").split(",") if a.strip()]
    if recipients:
        channels.append(EmailChannel(mailer or build_mailer(settings),
                                     Address(settings.email_sender, settings.email_sender_name),
                                     recipients, retries=retries))
    if settings.slack_webhook_url is not None:
        channels.append(SlackChannel(settings.slack_webhook_url.get_secret_value(), session,
                                     timeout=timeout, retries=retries))
    if settings.alert_webhook_url is not None:
        secret = settings.alert_webhook_secret
        channels.append(WebhookChannel(settings.alert_webhook_url.get_secret_value(), session,
                                       secret=secret.get_secret_value() if secret else None,
                                       timeout=timeout, retries=retries))
    return channels


def build_rules(settings: Settings, client: redis.Redis, runs: ActorRuns) -> list[Rule]:
    """The rules that look at Redis (``redis_unreachable`` is the process's own watch)."""
    return [
        DeadLetters(settings.alert_dead_letter_window, QueueStats(client, settings)),
        FailureRate(runs, settings.alert_failure_rate, settings.alert_failure_min_runs),
        QueueDepth(settings.alert_queue_depth),
        QueueAge(settings.alert_queue_age),
        NoConsumer(settings.alert_no_consumer_after, settings.enable_form_response_worker),
        DailySpend(settings.alert_llm_daily_budget_usd),
        MissedSchedules(),
        ProviderQuota(),
        BackupFailed(),
    ]


def claim_lease(settings: Settings) -> float:
    """Longest a send may take: every attempt timing out plus every wait, then a margin."""
    attempts = settings.alert_http_retries + 1
    return attempts * settings.alert_http_timeout + settings.alert_http_retries * MAX_RETRY_AFTER + 30


class AlertService:
    """What one process runs: record actor runs, evaluate, watch its own Redis connection."""

    def __init__(self, settings: Settings, client: redis.Redis, notifier: Notifier) -> None:
        self.settings = settings
        self.notifier = notifier
        self.runs = ActorRuns(client, settings.keys, settings.alert_failure_window)
        self.clock = RedisClock(client)
        self.incidents = IncidentStore(client, settings.keys, cooldown_s=settings.alert_cooldown,
                                       lease_s=claim_lease(settings), source=process_name(),
                                       dashboard_url=settings.alert_dashboard_url)
        reader = StatusReader(settings, client)
        self.evaluator = Evaluator(
            build_rules(settings, client, self.runs), self.incidents, notifier,
            view_at=lambda now_ms: ClusterView(client, settings.keys, reader, now_ms),
            clock=self.clock.now_ms, disabled=settings.alert_disabled_rules)
        self.redis_down = RedisDownWatch(
            notifier, after_s=settings.alert_redis_down_after, cooldown_s=settings.alert_cooldown,
            source=process_name, dashboard_url=settings.alert_dashboard_url,
            enabled=REDIS_DOWN not in settings.alert_disabled_rules)
        self.outage = Outage(logger, "Alert evaluation")

    @property
    def enabled(self) -> bool:
        return bool(self.notifier.channels)

    @property
    def rule_names(self) -> tuple[str, ...]:
        return (*self.evaluator.rule_names, REDIS_DOWN)

    def flush(self) -> None:
        """Publish this process's pending run counts if Redis takes them (at shutdown)."""
        try:
            self.runs.publish()
        except redis.RedisError as exc:
            logger.info("Alert run counts not published at shutdown (%s)", type(exc).__name__)

    def tick(self, evaluate: bool = True) -> None:
        """Publish this process's run counts, then evaluate; never raises (a thread calls it)."""
        self.incidents.source = process_name()
        try:
            self.runs.publish()
            if evaluate:
                self.evaluator.run_once()
        except (redis.RedisError, RedisUnavailable) as exc:
            self.outage.failed(exc)
            self.redis_down.failed(redis_problem(exc))
            return
        except Exception:
            logger.exception("Alert evaluation failed")
            return
        self.outage.worked()
        self.redis_down.worked()


def build_alerting(settings: Settings, client: redis.Redis, mailer: Mailer | None = None) -> AlertService:
    """The alerting of this process from the settings (``mailer``: the process's, if it has one)."""
    channels = build_channels(settings, mailer)
    if not channels:
        logger.debug("No alert channel configured (ALERT_EMAIL_TO, SLACK_WEBHOOK_URL, ALERT_WEBHOOK_URL)")
    return AlertService(settings, client, Notifier(channels))
