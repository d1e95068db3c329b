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
from gabay.ops.demo.run import run_demo
from gabay.ops.supervisor import Supervisor, WorkerCommand
from gabay.queues import check_queue_names, consumed_queues


@main.command()
@click.option("--processes", "-p", type=int, help="Worker processes (default WORKER_PROCESSES).")
@click.option("--threads", "-t", type=int, help="Threads per process (default WORKER_THREADS).")
@click.option("--queue", "-Q", "queues", multiple=True, help="Consume only these queues.")
@click.option("--watch", is_flag=True, help="Reload the workers when gabay's code changes.")
@click.option("--module", "modules", multiple=True, help="Extra actor modules to import.")
@click.pass_context
def workers(
    ctx: click.Context,
    processes: int | None,
    threads: int | None,
    queues: tuple[str, ...],
    watch: bool,
    modules: tuple[str, ...],
) -> None:
    """Run the worker system (dramatiq gabay.actors), restarting it if it dies."""
    settings = get_settings(ctx)
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
    click.echo(f"Starting workers on {describe_url(url)}: {command.processes} processes x "
               f"{command.threads} threads, queues {', '.join(command.queues)}", err=True)
    supervisor = Supervisor(command)
    supervisor.on_restart.append(lambda: count_restart(client, settings.keys))
    sys.exit(supervisor.run())


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
