"""``gabay dashboard``: the web UI, JSON API and /metrics, served by waitress."""

from __future__ import annotations

import sys

import click

from gabay.cli import get_redis, get_settings, main
from gabay.cluster.connection import ping
from gabay.errors import RedisUnavailable


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (anything but loopback needs DASHBOARD_PASSWORD).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--url-prefix", default="", metavar="PATH",
              help="Path under which a reverse proxy serves the dashboard, such as /gabay.")
@click.option("--trusted-proxy", default=None, metavar="ADDRESS",
              help="Address of a reverse proxy whose X-Forwarded-* headers are trusted.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Request threads.")
@click.pass_context
def dashboard(ctx: click.Context, host: str, port: int, url_prefix: str,
              trusted_proxy: str | None, threads: int) -> None:
    """Serve the dashboard: health page, /dramatiq/ messages, /api, /metrics, /healthz."""
    from gabay.web.server import serve  # here: the web stack is heavy for the other commands

    settings = get_settings(ctx)
    try:  # a wrong URL stops here with one line; a Redis that does not answer is shown as down
        ping(get_redis(ctx))
    except RedisUnavailable as exc:
        click.echo(f"gabay: warning: {exc}; the dashboard shows Redis as down until it answers",
                   err=True)
    sys.exit(serve(settings, host=host, port=port, url_prefix=url_prefix,
                   trusted_proxy=trusted_proxy, threads=threads))
