"""Serving the dashboard with waitress, a production WSGI server (one process, a few threads)."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from waitress.server import create_server

from gabay.settings import Settings
from gabay.web.app import create_app
from gabay.web.auth import check_bind
from gabay.web.sources import build_sources

logger = logging.getLogger(__name__)

PROXY_HEADERS = "x-forwarded-for x-forwarded-host x-forwarded-proto x-forwarded-port"


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8080, url_prefix: str = "",
          trusted_proxy: str | None = None, threads: int = 4) -> int:
    """Serve until SIGTERM or SIGINT; return the exit code.

    The bind rule is checked before anything is connected. The actors are imported here, not at
    the top: importing gabay.actors reads the settings and builds the broker (whose declared
    queues dramatiq-dashboard lists).
    """
    check_bind(host, settings.dashboard_password)
    url_prefix = "/" + url_prefix.strip("/") if url_prefix.strip("/") else ""
    import gabay.actors

    broker = gabay.actors.broker
    sources = build_sources(settings, broker.client)
    app = create_app(sources, broker, url_prefix=url_prefix)
    options: dict[str, object] = {"host": host, "port": port, "threads": threads,
                                  "url_prefix": url_prefix, "ident": "gabay"}
    if trusted_proxy:
        options.update(trusted_proxy=trusted_proxy, trusted_proxy_headers=PROXY_HEADERS,
                       clear_untrusted_proxy_headers=True)
    server = create_server(app, **options)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)  # waitress's run() catches it and shuts down cleanly

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info("gabay dashboard on http://%s:%d%s/", host, port, url_prefix)
    server.run()
    logger.info("dashboard stopped")
    return 0
