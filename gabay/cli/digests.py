"""``gabay digests``: opt a teacher out of (or back into) the digests, set their zone, list, send."""

from __future__ import annotations

import click

from gabay.cli import get_settings, main
from gabay.digests.periods import KINDS, parse_kind, zone_of
from gabay.store.identity import as_person_id
from gabay.store.results import ResultsStore


@main.group()
def digests() -> None:
    """Teachers' daily and weekly digest emails (queue digests)."""


def _set(ctx: click.Context, teacher: str, *, digests_opt_out: bool | None = None,
         time_zone: str | None = None) -> str:
    teacher_id = as_person_id(teacher)
    store = ResultsStore.from_settings(get_settings(ctx))
    try:
        store.set_teacher_preferences(teacher_id, digests_opt_out=digests_opt_out, time_zone=time_zone)
    finally:
        store.dispose()
    return teacher_id


@digests.command("opt-out")
@click.argument("teacher")
@click.pass_context
def opt_out(ctx: click.Context, teacher: str) -> None:
    """Stop the digests of TEACHER (their id st-..., or their address)."""
    click.echo(f"Teacher {_set(ctx, teacher, digests_opt_out=True)}: digests off.")


@digests.command("opt-in")
@click.argument("teacher")
@click.pass_context
def opt_in(ctx: click.Context, teacher: str) -> None:
    """Send TEACHER the digests again."""
    click.echo(f"Teacher {_set(ctx, teacher, digests_opt_out=False)}: digests on.")


@digests.command("zone")
@click.argument("teacher")
@click.argument("zone")
@click.pass_context
def zone(ctx: click.Context, teacher: str, zone: str) -> None:
    """Send TEACHER's digests in ZONE (an IANA name; "default" for SCHEDULE_TIMEZONE)."""
    name = "" if zone == "default" else zone
    if name:
        zone_of(name)
    teacher_id = _set(ctx, teacher, time_zone=name)
    click.echo(f"Teacher {teacher_id}: digests in {name or 'the default zone (SCHEDULE_TIMEZONE)'}.")


@digests.command("list")
@click.option("--teacher", default=None, help="Only this teacher (id or address).")
@click.pass_context
def list_command(ctx: click.Context, teacher: str | None) -> None:
    """The digests claimed and sent: teacher id, period, start, state."""
    store = ResultsStore.from_settings(get_settings(ctx))
    try:
        rows = store.digests(as_person_id(teacher) if teacher else None)
    finally:
        store.dispose()
    if not rows:
        click.echo("no digest yet")
    for row in rows:
        click.echo(f"{row['teacher_id']}  {row['period']:<6}  {row['period_start']:%Y-%m-%d %H:%M} UTC  "
                   f"{row['state']}")


@digests.command("send")
@click.argument("period", type=click.Choice(KINDS))
@click.pass_context
def send(ctx: click.Context, period: str) -> None:
    """Enqueue the due PERIOD digests now (what the hourly schedule does)."""
    get_settings(ctx)
    # Imported when the command runs: importing gabay.actors reads the settings and builds the broker.
    from gabay.actors.digests import send_digests

    send_digests.send(parse_kind(period))
    click.echo(f"Digests {period}: fan-out enqueued on queue digests.")
