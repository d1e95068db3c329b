"""The ``gabay`` command: one group, with commands in one module per area.

Errors of gabay become one line on stderr and a non-zero exit code; tracebacks are for bugs.
"""

from __future__ import annotations

import logging
from typing import Any

import click
import redis

import gabay
from gabay.cluster.connection import connect, redis_problem
from gabay.errors import GabayError
from gabay.settings import Settings, load_settings


class GabayGroup(click.Group):
    """A click group that turns GabayError (and a Redis error) into ``gabay: <message>``, exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (GabayError, redis.RedisError) as exc:
            click.echo(f"gabay: {_one_line(ctx, exc)}", err=True)
            ctx.exit(1)


def _one_line(ctx: click.Context, exc: Exception) -> str:
    """The error's message; a Redis failure names the host and port of this command's client."""
    cause = exc if isinstance(exc, redis.RedisError) else exc.__cause__
    client = ctx.ensure_object(dict).get("redis")
    if isinstance(cause, redis.RedisError) and (client is not None or exc is cause):
        return redis_problem(cause, client)
    return str(exc)


def get_redis(ctx: click.Context) -> redis.Redis:
    """The Redis client of this invocation (one per command), for the settings of :func:`get_settings`."""
    obj = ctx.ensure_object(dict)
    if "redis" not in obj:
        obj["redis"] = connect(get_settings(ctx))
    client: redis.Redis = obj["redis"]
    return client


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


# Importing the command modules registers their commands on ``main``.
from gabay.cli import (  # noqa: E402,F401
    alerts,
    api_tokens,
    backup,
    dashboard,
    data,
    db,
    digests,
    feedback,
    grades,
    jobs_cli,
    operations,
    questions,
    reports,
    schedules,
    workers,
)
