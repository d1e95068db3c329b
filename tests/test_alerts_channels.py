"""Alert channels against fake receivers speaking the real wire formats: Slack's incoming webhook,
a generic JSON webhook, and email through the Mailer (file outbox and Brevo).

Faults: Slack's 429 with Retry-After, a webhook's 500, a channel that is down while another
works, a revoked Slack URL (404 no_service). Secrets never reach a log line.
"""

from __future__ import annotations

import email
import email.policy
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from gabay.alerts.missed_schedules import report_missed_schedule
from gabay.alerts.notification import Notification
from gabay.alerts.service import AlertService, build_alerting
from gabay.alerts.webhook import SIGNATURE_HEADER, verify
from gabay.settings import load_settings
from tests.fakes import webhook_server
from tests.fakes.brevo_server import FakeBrevo
from tests.fakes.webhook_server import FakeReceiver, no_service, rate_limited, server_error
from tests.support.polling import wait_for

DASHBOARD = "https://gabay.example/dashboard/"


@pytest.fixture
def slack() -> Iterator[FakeReceiver]:
    with webhook_server.slack() as receiver:
        yield receiver


@pytest.fixture
def hook() -> Iterator[FakeReceiver]:
    with webhook_server.webhook() as receiver:
        yield receiver


def service(client: redis.Redis, **overrides: Any) -> AlertService:
    overrides.setdefault("alert_disabled_rules", "")
    return build_alerting(load_settings(alert_dashboard_url=DASHBOARD, **overrides), client)


def fire(client: redis.Redis, alerts: AlertService, name: str = "nightly-digest") -> None:
    report_missed_schedule(client, load_settings().keys, name, "2026-12-03T02:00Z")
    alerts.tick()


def test_slack_gets_its_payload_after_a_429_with_retry_after(redis_client: redis.Redis,
                                                           slack: FakeReceiver) -> None:
    slack.script(rate_limited(retry_after=1))
    alerts = service(redis_client, slack_webhook_url=slack.url)
    started = time.monotonic()
    fire(redis_client, alerts)
    assert time.monotonic() - started >= 1.0  # waited as Slack asked
    assert [r["status"] for r in slack.requests] == [429, 200]
    body = slack.accepted()[0]["json"]
    assert body["text"].startswith("[FIRING] scheduled job 'nightly-digest' missed its run")
    types = [block["type"] for block in body["blocks"]]
    assert types == ["header", "section", "context", "actions"]
    assert body["blocks"][1]["text"]["type"] == "mrkdwn"
    button = body["blocks"][3]["elements"][0]
    assert button["type"] == "button" and button["url"] == DASHBOARD


def test_webhook_500_then_ok_is_signed_and_documented(redis_client: redis.Redis, hook: FakeReceiver) -> None:
    hook.script(server_error(500))
    alerts = service(redis_client, alert_webhook_url=hook.url, alert_webhook_secret="hmac-key")
    fire(redis_client, alerts)
    assert [r["status"] for r in hook.requests] == [500, 200]
    request = hook.accepted()[0]
    assert verify(request["raw"], request["headers"][SIGNATURE_HEADER], "hmac-key")
    assert not verify(request["raw"], request["headers"][SIGNATURE_HEADER], "other-key")
    body = request["json"]
    assert set(body) == {"version", "id", "event", "rule", "subject", "severity", "summary",
                         "details", "opened_at", "resolved_at", "source", "dashboard_url", "test",
                         "sent_at"}
    assert request["headers"]["X-Gabay-Alert"] == f"{body['id']}:firing"
    assert (body["event"], body["rule"], body["dashboard_url"]) == ("firing", "missed_schedule", DASHBOARD)
    # every attempt had the same body id: a receiver de-duplicates by X-Gabay-Alert
    assert {r["headers"]["X-Gabay-Alert"] for r in hook.requests} == {f"{body['id']}:firing"}


def test_one_channel_down_does_not_stop_the_other_and_is_retried_alone(
        redis_client: redis.Redis, slack: FakeReceiver, hook: FakeReceiver) -> None:
    hook.script(server_error(500), server_error(500))  # both attempts of the first try fail
    alerts = service(redis_client, slack_webhook_url=slack.url, alert_webhook_url=hook.url,
                     alert_http_retries=1)
    alerts.incidents.retry_after_s = 0.2
    fire(redis_client, alerts)
    assert len(slack.accepted()) == 1 and hook.accepted() == []

    def webhook_delivered() -> bool:
        alerts.tick()
        return bool(hook.accepted())

    wait_for(webhook_delivered, timeout=10, interval=0.1, message="the webhook's retry")
    alerts.tick()
    assert len(slack.accepted()) == 1, "Slack, which had it, is not sent it again"
    assert len(hook.accepted()) == 1


def test_a_revoked_slack_url_fails_for_good_without_blocking_email(
        redis_client: redis.Redis, slack: FakeReceiver, tmp_path: Path) -> None:
    slack.script(no_service())
    alerts = service(redis_client, slack_webhook_url=slack.url, alert_email_to="ops@gabay.example",
                     email_outbox_dir=str(tmp_path))
    fire(redis_client, alerts)
    assert [r["status"] for r in slack.requests] == [404], "a 4xx is not retried"
    assert len(list(tmp_path.glob("*.eml"))) == 1
    alerts.tick()
    assert len(slack.requests) == 1, "nor tried again later"


def test_email_through_the_outbox_mailer(redis_client: redis.Redis, tmp_path: Path) -> None:
    alerts = service(redis_client, alert_email_to="ops@gabay.example, oncall@gabay.example",
                     email_outbox_dir=str(tmp_path))
    fire(redis_client, alerts)
    files = sorted(tmp_path.glob("*.eml"))
    assert len(files) == 2
    messages = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
    assert sorted(str(m["To"]) for m in messages) == ["ops@gabay.example", "oncall@gabay.example"][::-1]
    subject = str(messages[0]["Subject"])
    assert subject.startswith("[gabay] [FIRING] scheduled job 'nightly-digest'")
    text = messages[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "rule: missed_schedule" in text and DASHBOARD in text
    report_redis = load_settings().keys
    redis_client.hdel(report_redis.missed_schedules, "nightly-digest")
    alerts.tick()
    assert len(list(tmp_path.glob("*resolved*.eml"))) == 2


def test_email_through_brevo_retries_its_429(redis_client: redis.Redis, brevo: FakeBrevo) -> None:
    from tests.fakes.brevo_server import rate_limited as brevo_429
    brevo.script(brevo_429(reset=1))
    alerts = service(redis_client, alert_email_to="ops@gabay.example", brevo_api_key=brevo.api_key,
                     brevo_base_url=brevo.base_url)
    fire(redis_client, alerts)
    assert len(brevo.sends) == 2 and len(brevo.listed) == 1  # the 429, then the email
    sent = brevo.sends[1]["body"]
    assert sent["to"] == [{"email": "ops@gabay.example"}]
    assert "gabay-alert" in sent["tags"] and sent["subject"].startswith("[gabay] [FIRING]")


def test_secrets_and_personal_data_never_reach_the_logs_or_the_alert(
        redis_client: redis.Redis, caplog: pytest.LogCaptureFixture, hook: FakeReceiver) -> None:
    caplog.set_level(logging.DEBUG)
    closed = "http://127.0.0.1:9/services/T0/B0/topSecretToken"  # nothing listens on port 9
    alerts = service(redis_client, slack_webhook_url=closed, alert_webhook_url=hook.url + "?token=hush",
                     alert_webhook_secret="signing-secret", alert_http_retries=0)
    report_missed_schedule(redis_client, load_settings().keys, "export for ana@school.example", "s1")
    alerts.tick()
    assert len(hook.accepted()) == 1
    assert "ana@school.example" not in hook.accepted()[0]["raw"].decode()
    with webhook_server.slack() as slack:
        alerts = service(redis_client, slack_webhook_url=slack.url)
        report_missed_schedule(redis_client, load_settings().keys, "another", "s1")
        alerts.tick()
        assert len(slack.accepted()) == 1
    logged = caplog.text + repr(alerts.notifier.channels)
    for secret in ("topSecretToken", "hush", "signing-secret", "s3cr3tW3bh00kT0k3n"):
        assert secret not in logged
    assert "slack" in caplog.text  # the failure itself is logged, by channel name


def test_resolved_payloads_and_the_test_notification(slack: FakeReceiver) -> None:
    from gabay.alerts.slack import payload
    note = Notification(incident_id="abc", rule="queue_depth", subject="generation", state="resolved",
                        severity="warning", summary="queue 'generation' has <2000> waiting & more",
                        details={"waiting": 2000}, opened_at=1764720000, resolved_at=1764720600,
                        dashboard_url=None, test=True)
    body = payload(note)
    assert body["text"].startswith("[TEST] [RESOLVED]")
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context"]
    assert "&lt;2000&gt; waiting &amp; more" in body["blocks"][1]["text"]["text"]
    assert "from 2025-12-03 00:00:00 UTC to 2025-12-03 00:10:00 UTC" in body["blocks"][1]["text"]["text"]


def test_cli_sends_a_test_alert_and_lists_incidents(redis_client: redis.Redis, slack: FakeReceiver,
                                                    hook: FakeReceiver) -> None:
    from click.testing import CliRunner

    from gabay.cli import main

    slack.script(no_service())
    env = {"SLACK_WEBHOOK_URL": slack.url, "ALERT_WEBHOOK_URL": hook.url}
    result = CliRunner().invoke(main, ["alerts", "test"], env=env)
    assert result.exit_code == 1 and "webhook: sent" in result.output
    assert "slack: FAILED" in result.output and "s3cr3t" not in result.output
    assert hook.accepted()[0]["json"]["test"] is True

    report_missed_schedule(redis_client, load_settings().keys, "nightly-digest", "n1")
    assert CliRunner().invoke(main, ["alerts", "check"], env=env).exit_code == 0
    listed = CliRunner().invoke(main, ["alerts", "list"], env=env)
    assert listed.exit_code == 0
    assert "firing   missed_schedule  nightly-digest" in listed.output
    assert "told: firing" in listed.output
    assert CliRunner().invoke(main, ["alerts", "test"], env={}).exit_code == 1


def test_a_firing_alert_one_channel_had_is_resolved_even_if_another_never_took_it(
        redis_client: redis.Redis, slack: FakeReceiver, hook: FakeReceiver) -> None:
    hook.script(server_error(500))
    alerts = service(redis_client, slack_webhook_url=slack.url, alert_webhook_url=hook.url,
                     alert_http_retries=0)
    fire(redis_client, alerts)  # Slack has it; the webhook is to be tried again in a minute
    redis_client.hdel(load_settings().keys.missed_schedules, "nightly-digest")
    alerts.tick()
    assert [state for state, _ in slack.events()] == ["firing", "resolved"]  # at once, not in a minute
    assert alerts.incidents.incidents(("missed_schedule",)) == []
