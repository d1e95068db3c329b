"""``gabay alerts``: the open incidents, a test alert through every channel, an evaluation pass.

``gabay alerts check`` evaluates the rules once (``--loop``: every ``ALERT_INTERVAL`` seconds)
from outside the workers: the one place that still alerts when no worker process runs at all.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid

import click

from gabay.alerts.channels import Notifier
from gabay.alerts.notification import Notification
from gabay.alerts.service import build_alerting, build_channels, process_name
from gabay.cli import get_redis, get_settings, main
from gabay.errors import GabayError


@main.group()
def alerts() -> None:
    """Alerts: open incidents, a test alert, an evaluation pass."""


@alerts.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table")
@click.pass_context
def list_incidents(ctx: click.Context, as_json: bool) -> None:
    """The incidents in Redis: pending, firing or resolving."""
    settings = get_settings(ctx)
    service = build_alerting(settings, get_redis(ctx))
    found = service.incidents.incidents(service.evaluator.rule_names)
    if as_json:
        for incident in found:
            click.echo(json.dumps(dataclasses.asdict(incident)))
        return
    if not found:
        click.echo("No open incidents.")
    for incident in found:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(incident.opened_at or incident.since))
        told = f", told: {incident.sent}" if incident.sent else ", not told yet"
        click.echo(f"{incident.state:<8} {incident.rule:<16} {incident.subject:<28} since {since} UTC"
                   f"{told}  {incident.summary}")


@alerts.command("test")
@click.pass_context
def send_test(ctx: click.Context) -> None:
    """Send a test alert through every configured channel (Redis is not needed)."""
    settings = get_settings(ctx)
    notifier = Notifier(build_channels(settings))
    if not notifier.channels:
        raise GabayError("no alert channel is configured (ALERT_EMAIL_TO, SLACK_WEBHOOK_URL, "
                         "ALERT_WEBHOOK_URL)")
    note = Notification(incident_id=uuid.uuid4().hex, rule="test", subject="test", state="firing",
                        severity="warning", summary="a test alert from gabay",
                        details={"sent_by": "gabay alerts test"}, opened_at=time.time(),
                        source=process_name(), dashboard_url=settings.alert_dashboard_url, test=True)
    report = notifier.send(note)
    for name in sorted(report.delivered):
        click.echo(f"{name}: sent")
    for name in sorted(report.failed | report.retryable):
        click.echo(f"{name}: FAILED (see the log above)")
    if report.failed or report.retryable:
        ctx.exit(1)


@alerts.command("check")
@click.option("--loop", is_flag=True, help="evaluate every ALERT_INTERVAL seconds until Ctrl-C")
@click.pass_context
def check(ctx: click.Context, loop: bool) -> None:
    """Evaluate the rules (as the workers do) and send what is due."""
    settings = get_settings(ctx)
    service = build_alerting(settings, get_redis(ctx))
    if not service.enabled:
        raise GabayError("no alert channel is configured (ALERT_EMAIL_TO, SLACK_WEBHOOK_URL, "
                         "ALERT_WEBHOOK_URL)")
    while True:
        service.tick()
        if not loop:
            break
        time.sleep(settings.alert_interval)
    found = service.incidents.incidents(service.evaluator.rule_names)
    click.echo(f"{len(found)} open incident(s)")
