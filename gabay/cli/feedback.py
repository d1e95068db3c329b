"""``gabay feedback SUBMISSION.json [--wait]``: email personal feedback on an exam submission."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from gabay.cli import get_settings, main
from gabay.errors import InvalidInput
from gabay.jobs import JobRecord, JobStatus
from gabay.mail.delivery import describe_delivery
from gabay.store.identity import person_id

POLL_SECONDS = 0.2


@main.command()
@click.argument("submission", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--wait", is_flag=True, help="Wait for the outcome and show where the email went.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait with --wait.")
@click.pass_context
def feedback(ctx: click.Context, submission: Path, wait: bool, timeout: float) -> None:
    """Enqueue SUBMISSION.json (a form response) for feedback by email."""
    get_settings(ctx)
    # Imported when the command runs: importing gabay.actors reads the settings and builds the broker.
    from gabay.actors.feedback import context, process_form_response

    data = read_submission(submission)
    job_id = process_form_response.send(data)
    click.echo(f"Job {job_id} enqueued.")
    if not wait:
        click.echo(f"Follow it with: gabay job {job_id}")
        return
    record = context.store.wait(job_id, timeout)
    show_feedback(record)
    if record.status is JobStatus.FAILED:
        ctx.exit(1)


def read_submission(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path} is not a JSON file: {exc}") from None


def show_feedback(record: JobRecord) -> None:
    """Status, stages, cost, then the score, the subject and where the email went."""
    click.echo(f"Job {record.id} (feedback): {record.status}")
    for stage, timing in record.stages.items():
        took = f"{timing.seconds * 1000:.0f} ms" if timing.seconds is not None else "running"
        click.echo(f"  {stage}: {took}")
    click.echo(f"  LLM: {record.total_tokens} tokens, ${record.cost_usd:.6f}")
    if record.status is JobStatus.FAILED or record.result is None:
        click.echo(f"Error: {record.error}")
        return
    result = record.result
    click.echo(f"Score: {result['score']['label']}")
    click.echo(f"To: student {person_id(result['to'])}")  # operators see ids, never an address
    click.echo(f"Subject: {result['subject']}")  # the exam's title and the score: no name
    click.echo(f"Feedback by: {result['feedback_source']}")
    click.echo(f"Sent: {describe_delivery(result)}")
