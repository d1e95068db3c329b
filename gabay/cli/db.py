"""``gabay db``: the results database's migrations (``upgrade``, ``current``).

The database is ``DATABASE_URL`` (or the embedded SQLite file in ``GABAY_DATA_DIR``); the URL is
shown with its password masked.
"""

from __future__ import annotations

import click

from gabay.cli import get_settings, main
from gabay.store.engine import build_engine, database_url, describe_url
from gabay.store.schema import HEAD_REVISION, current_revision, upgrade


@main.group()
def db() -> None:
    """The results database: its schema revision and migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="the revision to migrate to")
@click.pass_context
def upgrade_command(ctx: click.Context, revision: str) -> None:
    """Migrate the results database to the code's schema (safe to run again)."""
    settings = get_settings(ctx)
    engine = build_engine(settings)
    try:
        before = current_revision(engine)
        after = upgrade(engine, revision)
    finally:
        engine.dispose()
    where = describe_url(database_url(settings))
    if before == after:
        click.echo(f"results database {where}: already at revision {after}")
    else:
        click.echo(f"results database {where}: upgraded from {before or 'empty'} to {after}")


@db.command("current")
@click.pass_context
def current_command(ctx: click.Context) -> None:
    """Show the results database's revision and the one this code needs."""
    settings = get_settings(ctx)
    engine = build_engine(settings)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    state = "up to date" if current == HEAD_REVISION else "run `gabay db upgrade`"
    click.echo(f"results database {describe_url(database_url(settings))}")
    click.echo(f"revision: {current or 'none (empty)'}; code needs {HEAD_REVISION} ({state})")
