"""Operator commands for the whole cluster: status, health, pause, resume, restart, workers-list.

They act through Redis, so they reach every worker process on every host from any machine.
"""

from __future__ import annotations

import json
import time

import click

from gabay.cli import get_redis, get_settings, main
from gabay.cluster.status import ClusterStatus, WorkloadStatus
from gabay.errors import GabayError, RedisUnavailable
from gabay.ops.manager import WorkerManager

WATCH_EVERY = 2.0
COLUMNS = ("waiting", "held", "delayed", "running", "dead_lettered", "completed", "failed", "consumers")
#: Table headers of the columns whose field name is not what they show.
HEADERS = {"waiting": "READY", "dead_lettered": "DEAD"}


def _manager(ctx: click.Context) -> WorkerManager:
    return WorkerManager(get_settings(ctx), get_redis(ctx))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _workload_counts(work: WorkloadStatus) -> str:
    """``active 1, waiting 3 (ready 1, held 2), delayed 22 (rate limit 22), completed 5, failed 0``."""
    reasons = ", ".join(f"{reason} {count}" for reason, count in work.delayed_by_reason.items())
    return (f"active {work.active}, waiting {work.waiting} (ready {work.ready}, held {work.held}), "
            f"delayed {work.delayed}{f' ({reasons})' if reasons else ''}, "
            f"completed {work.completed}, failed {work.failed}")


def render_status(status: ClusterStatus) -> str:
    """The status as a readable table."""
    lines = [f"Cluster: {'healthy' if status.healthy else 'UNHEALTHY'}"]
    lines += [f"  - {reason}" for reason in status.reasons]
    if not status.redis_reachable:
        return "\n".join(lines)
    workers, questions, feedback = status.workers, status.queues, status.form_response_worker
    lines.append(f"Workers: {workers.worker_count} processes, {workers.concurrency} threads, "
                 f"up {_duration(status.uptime)}, restarts {status.restart_attempts}, "
                 f"memory recycles {status.memory_recycles}")
    lines.append(f"Question generation ({'running' if workers.is_running else 'not running'}): "
                 f"{_workload_counts(questions)}")
    state = ("running" if feedback.is_running else "not running") + ("" if feedback.enabled else ", disabled")
    lines.append(f"Form response ({state}): {_workload_counts(feedback)}")
    header = ["QUEUE", *(HEADERS.get(c, c.upper()) for c in COLUMNS), "PAUSED"]
    rows = [[q.name, *(str(getattr(q, c)) for c in COLUMNS), "yes" if q.paused else ""]
            for q in status.per_queue.values()]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines.append("")
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status model as JSON.")
@click.option("--watch", is_flag=True, help=f"Refresh every {WATCH_EVERY:g} s until Ctrl-C.")
@click.pass_context
def status(ctx: click.Context, as_json: bool, watch: bool) -> None:
    """Show the cluster's workers, queues and health (all processes, all hosts)."""
    manager = _manager(ctx)
    if watch:
        try:
            while True:
                current = manager.get_status()
                click.clear()
                click.echo(current.model_dump_json(indent=2) if as_json else render_status(current))
                time.sleep(WATCH_EVERY)
        except KeyboardInterrupt:
            return
    current = manager.get_status()
    if not current.redis_reachable:
        raise RedisUnavailable(current.reasons[0])
    click.echo(current.model_dump_json(indent=2) if as_json else render_status(current))


@main.command()
@click.pass_context
def health(ctx: click.Context) -> None:
    """Exit 0 when the cluster is healthy, 1 with the reasons on stderr (for probes and scripts)."""
    current = _manager(ctx).get_status()
    if current.healthy:
        click.echo("healthy")
        return
    for reason in current.reasons:
        click.echo(f"unhealthy: {reason}", err=True)
    ctx.exit(1)


@main.command()
@click.argument("queues", nargs=-1)
@click.pass_context
def pause(ctx: click.Context, queues: tuple[str, ...]) -> None:
    """Pause QUEUES (all queues when none is named) in every worker process; work waits, nothing is lost."""
    paused = _manager(ctx).pause_queues(list(queues) or None)
    click.echo(f"paused: {', '.join(sorted(paused)) or 'none'}")


@main.command()
@click.argument("queues", nargs=-1)
@click.pass_context
def resume(ctx: click.Context, queues: tuple[str, ...]) -> None:
    """Resume QUEUES (all queues when none is named)."""
    paused = _manager(ctx).resume_queues(list(queues) or None)
    click.echo(f"resumed; still paused: {', '.join(sorted(paused)) or 'none'}")


@main.command()
@click.option("--wait/--no-wait", default=False, help="Wait until every worker process restarted.")
@click.option("--timeout", type=float, help="Seconds to wait (default DRAIN_TIMEOUT + 30).")
@click.pass_context
def restart(ctx: click.Context, wait: bool, timeout: float | None) -> None:
    """Drain and restart every worker process on every host."""
    manager = _manager(ctx)
    before = {w.worker_id for w in manager.workers()}
    generation = manager.restart()
    click.echo(f"restart {generation} requested; {len(before)} worker processes will drain and restart")
    if not wait:
        return
    deadline = time.monotonic() + (timeout or manager.settings.drain_timeout + 30)
    while time.monotonic() < deadline:
        now = {w.worker_id for w in manager.workers()}
        if not now & before and len(now) >= len(before):
            click.echo(f"restarted: {len(now)} worker processes running")
            return
        time.sleep(0.5)
    raise GabayError("the worker processes did not all restart in time")


@main.command(name="workers-list")
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
@click.pass_context
def workers_list(ctx: click.Context, as_json: bool) -> None:
    """List the live worker processes of the cluster (host, pid, queues, threads, version)."""
    workers = _manager(ctx).workers()
    if as_json:
        click.echo(json.dumps([w.model_dump(mode="json") for w in workers], indent=2))
        return
    if not workers:
        click.echo("no live worker processes")
        return
    now = time.time()
    click.echo(f"{'HOST':<24} {'PID':>7} {'THREADS':>7} {'UP':>12}  VERSION   QUEUES")
    for w in sorted(workers, key=lambda w: (w.host, w.pid)):
        click.echo(f"{w.host:<24} {w.pid:>7} {w.threads:>7} {_duration(now - w.started_at):>12}  "
                   f"{w.version:<9} {', '.join(sorted(w.queues))}")
