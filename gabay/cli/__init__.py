"""The ``gabay`` command: one group, with commands in one module per area.

Errors of gabay become one line on stderr and a non-zero exit code; tracebacks are for bugs.
"""

from __future__ import annotations

import logging
from typing import Any

import click

import gabay
from gabay.errors import GabayError
from gabay.settings import Settings, load_settings


class GabayGroup(click.Group):
    """A click group that turns GabayError into ``gabay: <message>`` and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GabayError as exc:
            click.echo(f"gabay: {exc}", err=True)
            ctx.exit(1)


def get_settings(ctx: click.Context) -> Settings:
    """The settings of this invocation, read once."""
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        obj["settings"] = load_settings()
        logging.basicConfig(
            level=obj["settings"].log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    settings: Settings = obj["settings"]
    return settings


@click.group(cls=GabayGroup)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Gabay Workers: question generation and exam feedback on Dramatiq and Redis."""
    ctx.ensure_object(dict)


@main.command()
def version() -> None:
    """Print the version of gabay."""
    click.echo(f"gabay {gabay.__version__}")


from gabay.cli import alerts, dashboard, data, db, feedback, grades, operations, questions, schedules, workers  # noqa: E402,F401  (register commands)
