"""Commands that run and reach the worker system: workers, ping, config, redis."""

from __future__ import annotations

import json
import sys
import time
import uuid

import click

from gabay.cli import get_settings, main
from gabay.cluster.connection import connect, describe_url, ping, resolve_redis_url
from gabay.cluster.embedded_redis import EmbeddedRedis
from gabay.cluster.restarts import count_restart
from gabay.errors import RedisUnavailable
from gabay.ops.autoscaler import Autoscaler
from gabay.ops.demo.run import run_demo
from gabay.ops.supervisor import Supervisor, WorkerCommand
from gabay.queues import check_queue_names, consumed_queues
from gabay.settings import load_settings


@main.command()
@click.option("--processes", "-p", type=int, help="Worker processes (default WORKER_PROCESSES).")
@click.option("--threads", "-t", type=int, help="Threads per process (default WORKER_THREADS).")
@click.option("--queue", "-Q", "queues", multiple=True, help="Consume only these queues.")
@click.option("--watch", is_flag=True, help="Reload the workers when gabay's code changes.")
@click.option("--module", "modules", multiple=True, help="Extra actor modules to import.")
@click.option("--autoscale", metavar="MIN,MAX", callback=lambda ctx, param, value: _bounds(value),
              help="Run MIN to MAX single-process worker commands, as the queues need.")
@click.option("--max-memory", metavar="SIZE",
              help="Drain and replace a worker process whose RSS passes SIZE (512M, 1G; "
                   "default WORKER_MAX_MEMORY).")
@click.pass_context
def workers(
    ctx: click.Context,
    processes: int | None,
    threads: int | None,
    queues: tuple[str, ...],
    watch: bool,
    modules: tuple[str, ...],
    autoscale: tuple[int, int] | None,
    max_memory: str | None,
) -> None:
    """Run the worker system (dramatiq gabay.actors), restarting it if it dies."""
    if autoscale and (processes or watch):
        raise click.UsageError("--autoscale decides the processes itself: drop --processes/--watch")
    settings = get_settings(ctx)
    if max_memory is not None:
        settings = load_settings(worker_max_memory=max_memory)  # a wrong size: one clear line
    url = resolve_redis_url(settings)  # starts the embedded Redis if needed, before the workers
    client = connect(settings, url)
    ping(client)
    for warning in settings.model_warnings():
        click.echo(f"warning: {warning}", err=True)
    command = WorkerCommand(
        settings=settings,
        processes=processes or settings.worker_processes,
        threads=threads or settings.worker_threads,
        queues=tuple(check_queue_names(queues)) or consumed_queues(settings.enable_form_response_worker),
        extra_modules=modules,
        watch=watch,
    )
    if autoscale:
        click.echo(f"Starting autoscaled workers on {describe_url(url)}: {autoscale[0]} to "
                   f"{autoscale[1]} processes x {command.threads} threads, "
                   f"queues {', '.join(command.queues)}", err=True)
        autoscaler = Autoscaler.build(command, client, *autoscale)
        autoscaler.on_restart.append(lambda: count_restart(client, settings.keys))
        sys.exit(autoscaler.run())
    click.echo(f"Starting workers on {describe_url(url)}: {command.processes} processes x "
               f"{command.threads} threads, queues {', '.join(command.queues)}", err=True)
    supervisor = Supervisor(command)
    supervisor.on_restart.append(lambda: count_restart(client, settings.keys))
    sys.exit(supervisor.run())


def _bounds(value: str | None) -> tuple[int, int] | None:
    """``MIN,MAX`` of ``--autoscale``: 0 <= MIN <= MAX, MAX >= 1."""
    if value is None:
        return None
    try:
        low, high = (int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter("expected MIN,MAX such as 1,4", param_hint="--autoscale") from None
    if not 0 <= low <= high or high < 1:
        raise click.BadParameter("expected 0 <= MIN <= MAX and MAX >= 1", param_hint="--autoscale")
    return low, high


@main.command()
@click.option("--processes", "-p", default=2, show_default=True)
@click.option("--threads", "-t", default=4, show_default=True)
@click.pass_context
def demo(ctx: click.Context, processes: int, threads: int) -> None:
    """Start workers, enqueue the sample work, show the results, stop."""
    sys.exit(run_demo(get_settings(ctx), processes, threads))


@main.command(name="ping")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for a worker.")
@click.pass_context
def ping_command(ctx: click.Context, timeout: float) -> None:
    """Send a probe through a real worker and print which process answered."""
    settings = get_settings(ctx)
    # Imported when the command runs: importing gabay.actors reads the settings and builds the broker.
    from gabay.actors import broker, probe

    token = uuid.uuid4().hex
    started = time.monotonic()
    probe.send(token)
    while time.monotonic() - started < timeout:
        answer = broker.client.get(settings.keys.probe(token))
        if answer:
            elapsed = (time.monotonic() - started) * 1000
            click.echo(f"pong from {answer.decode()} in {elapsed:.0f} ms")
            return
        time.sleep(0.05)
    raise RedisUnavailable(f"no worker answered within {timeout:g} s (is `gabay workers` running?)")


@main.command()
@click.pass_context
def config(ctx: click.Context) -> None:
    """Print the effective configuration as JSON, with every secret masked."""
    settings = get_settings(ctx)
    data = json.loads(settings.model_dump_json())
    click.echo(json.dumps(data, indent=2, sort_keys=True))


@main.group()
def redis() -> None:
    """The embedded Redis (used when no Redis is configured or running locally)."""


@redis.command(name="url")
@click.pass_context
def redis_url(ctx: click.Context) -> None:
    """Print the Redis that gabay uses (password masked); starts the embedded one if needed."""
    click.echo(describe_url(resolve_redis_url(get_settings(ctx))))


@redis.command(name="stop")
@click.pass_context
def redis_stop(ctx: click.Context) -> None:
    """Stop the embedded Redis (its data stays on disk)."""
    stopped = EmbeddedRedis(get_settings(ctx).gabay_data_dir).stop()
    click.echo("embedded Redis stopped" if stopped else "embedded Redis was not running")
