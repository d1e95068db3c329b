"""The part every fake remote API shares: a real HTTP server on 127.0.0.1, in a thread, that
keeps every request and answers from a script of behaviours that tests queue up."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class QuietHandler(BaseHTTPRequestHandler):
    """A keep-alive handler that logs nothing; ``fake`` is the server object it serves."""

    fake: Any
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ScriptedServer:
    """A started server answers requests through ``handler``; ``script()`` queues behaviours."""

    def __init__(self, handler: type[QuietHandler]) -> None:
        self.behaviours: deque[Any] = deque()
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (handler,), {"fake": self}))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def root(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *behaviours: Any) -> None:
        with self.lock:
            self.behaviours.extend(behaviours)

    def next_behaviour(self) -> Any:
        with self.lock:
            return self.behaviours.popleft() if self.behaviours else None

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def serving(server: ScriptedServer) -> Iterator[Any]:
    """Start ``server`` and stop it at the end of the block."""
    server.start()
    try:
        yield server
    finally:
        server.stop()
