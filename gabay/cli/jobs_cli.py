"""``gabay cancel JOB_ID...`` and ``gabay retry JOB_ID...``: the console's job actions from a shell.

One line per job saying what was done (or why not); exit code 1 when any job was refused.
"""

from __future__ import annotations

import click

from gabay.cli import get_redis, get_settings, main
from gabay.console.jobs import Action, JobConsole
from gabay.jobs import JobStore


def _act(ctx: click.Context, action: Action, job_ids: tuple[str, ...]) -> None:
    settings = get_settings(ctx)
    client = get_redis(ctx)
    console = JobConsole(client, JobStore(client, settings), settings.keys)
    refused = 0
    for outcome in console.bulk(action, list(job_ids)):
        click.echo(outcome.message, err=not outcome.ok)
        refused += not outcome.ok
    if refused:
        ctx.exit(1)


@main.command()
@click.argument("job_ids", nargs=-1, required=True)
@click.pass_context
def cancel(ctx: click.Context, job_ids: tuple[str, ...]) -> None:
    """Cancel jobs in every worker process: a waiting message is dropped when fetched, a running
    job is interrupted within a second (its LLM call cut), unless its email send has started."""
    _act(ctx, "cancel", job_ids)


@main.command()
@click.argument("job_ids", nargs=-1, required=True)
@click.pass_context
def retry(ctx: click.Context, job_ids: tuple[str, ...]) -> None:
    """Requeue failed or cancelled jobs from the dead-letter queue, keeping their ids."""
    _act(ctx, "retry", job_ids)
