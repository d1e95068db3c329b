"""``gabay reports``: send an exam's PDF report to its teacher, list the reports kept."""

from __future__ import annotations

import time

import click

from gabay.cli import get_settings, main
from gabay.errors import InvalidInput
from gabay.reports.service import report_id_for
from gabay.store.results import ResultsStore

POLL_SECONDS = 0.2


@main.group()
def reports() -> None:
    """Exam reports (PDF) for teachers (queue reports)."""


@reports.command("send")
@click.argument("exam_id")
@click.option("--wait", is_flag=True, help="Wait until the report is emailed and show where it went.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait with --wait.")
@click.pass_context
def send_command(ctx: click.Context, exam_id: str, wait: bool, timeout: float) -> None:
    """Enqueue the report of EXAM_ID (a form id) for its teacher; sent once per analytics version."""
    settings = get_settings(ctx)
    store = ResultsStore.from_settings(settings)
    try:
        analytics = store.analytics(exam_id)
        if store.exam(exam_id) is None or analytics is None:
            raise InvalidInput(f"exam {exam_id!r} has no analytics in the results store; nothing to report")
        report_id = report_id_for(exam_id, analytics.computed_at)
        # Imported when the command runs: importing gabay.actors reads the settings and builds the broker.
        from gabay.actors.reports import send_exam_report

        send_exam_report.send(exam_id)
        click.echo(f"Report {report_id} of exam {exam_id} enqueued on queue reports.")
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while (stored := store.report(report_id)) is None or stored.email_state != "sent":
            if time.monotonic() > deadline:
                click.echo(f"Report {report_id}: not sent within {timeout:g} s", err=True)
                ctx.exit(1)
            time.sleep(POLL_SECONDS)
        where = stored.outbox_file or stored.email_message_id or "accepted earlier"
        click.echo(f"Report {report_id}: sent via {stored.email_via} ({where}); file {stored.path}")
    finally:
        store.dispose()


@reports.command("list")
@click.argument("exam_id")
@click.pass_context
def list_command(ctx: click.Context, exam_id: str) -> None:
    """The reports kept for EXAM_ID: id, analytics time, email state, file."""
    store = ResultsStore.from_settings(get_settings(ctx))
    try:
        kept = store.reports(exam_id)
    finally:
        store.dispose()
    if not kept:
        click.echo(f"no report of exam {exam_id}")
    for report in kept:
        click.echo(f"{report.report_id}  analytics {report.analytics_computed_at:%Y-%m-%d %H:%M} UTC  "
                   f"{report.email_state}  {report.path} ({report.size_bytes} bytes)")
