"""``gabay schedules``: the scheduled jobs, their next runs and last run; pause and resume one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import redis

from gabay.cli import get_redis, get_settings, main
from gabay.cluster.connection import redis_problem
from gabay.errors import RedisUnavailable, UnknownSchedule
from gabay.schedules.config import load_schedules
from gabay.schedules.state import ScheduleState
from gabay.schedules.status import leader_status, schedule_status


@contextmanager
def _redis_errors() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise RedisUnavailable(redis_problem(exc)) from exc  # the group names the host and port


def render(entries: list[dict[str, Any]], leader: dict[str, Any] | None) -> str:
    """The schedules as readable text, one block per schedule."""
    if not entries:
        return "no schedules (set SCHEDULES_FILE)"
    lines = [f"Leader: {leader['identity']} (fencing token {leader['token']})" if leader
             else "Leader: none (no worker process holds the lease)"]
    for e in entries:
        state = ("disabled" if not e["enabled"] else "enabled") + (", PAUSED" if e["paused"] else "")
        lines += ["", f"{e['name']}  [{state}]  {e['cron']}  ({e['timezone']})  -> {e['actor']}"
                      f"  misfire={e['misfire']}, grace {e['grace_seconds']:g} s"]
        lines.append("  next:     " + ", ".join(e["next_runs"]))
        run = e["last_run"]
        if run:
            late = " (late)" if run["late"] else ""
            error = f": {run['error']}" if run["error"] else ""
            lines.append(f"  last run: {run['slot']}{late}, message {run['message_id']}, "
                         f"{run['outcome']}{error}")
        else:
            lines.append("  last run: never")
        if e["last_skip"]:
            lines.append(f"  skipped:  {e['last_skip']['slot']}: {e['last_skip']['reason']}")
        if e["overdue_since"]:
            lines.append(f"  OVERDUE since {e['overdue_since']}")
    return "\n".join(lines)


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the schedules as JSON.")
@click.pass_context
def schedules(ctx: click.Context, as_json: bool) -> None:
    """List the scheduled jobs: next 3 runs, enabled/paused, the last run and its outcome."""
    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings(ctx)
    client = get_redis(ctx)
    with _redis_errors():
        entries = schedule_status(settings, client)
        leader = leader_status(settings, client)
    if as_json:
        click.echo(json.dumps({"leader": leader, "schedules": entries}, indent=2))
    else:
        click.echo(render(entries, leader))


def _state(ctx: click.Context, name: str) -> ScheduleState:
    settings = get_settings(ctx)
    names = [s.name for s in load_schedules(settings)]
    if name not in names:
        raise UnknownSchedule(f"unknown schedule {name!r}; known schedules: {', '.join(names) or 'none'}")
    return ScheduleState(get_redis(ctx), settings.keys)


@schedules.command()
@click.argument("name")
@click.pass_context
def pause(ctx: click.Context, name: str) -> None:
    """Pause schedule NAME for the whole cluster: its slots are skipped until resumed."""
    _set_paused(ctx, name, True)


@schedules.command()
@click.argument("name")
@click.pass_context
def resume(ctx: click.Context, name: str) -> None:
    """Resume schedule NAME: its next slot fires (slots skipped while paused do not run)."""
    _set_paused(ctx, name, False)


def _set_paused(ctx: click.Context, name: str, paused: bool) -> None:
    state = _state(ctx, name)
    with _redis_errors():
        state.pause(name) if paused else state.resume(name)
    click.echo(f"{'paused' if paused else 'resumed'}: {name}")
