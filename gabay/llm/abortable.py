"""An HTTP transport whose in-flight requests another thread can cut: ``transport.abort()``.

A thread blocked reading a socket does not see a Python exception raised into it (a cancel, a
time limit) until the read returns, and closing the HTTP client does not wake the read either. The
transport remembers every TCP socket it opened and :meth:`AbortableTransport.abort` shuts them
down (``shutdown(SHUT_RDWR)``), which ends a blocked read at once with an error: the call stops
and the provider sees the connection closed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable
from typing import Any

import httpcore2
import httpx2


class _TrackingBackend(httpcore2.SyncBackend):
    """httpcore's socket backend, keeping the sockets it opens."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.aborted = False
        self._lock = threading.Lock()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore2.NetworkStream:
        stream = super().connect_tcp(host, port, timeout, local_address, socket_options)
        sock = stream.get_extra_info("socket")
        with self._lock:
            self.sockets.append(sock)
            aborted = self.aborted
        if aborted:
            _shut(sock)
        return stream

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            sockets = list(self.sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


class AbortableTransport(httpx2.HTTPTransport):
    """``httpx2.HTTPTransport`` (default settings) plus :meth:`abort` from any thread."""

    def __init__(self) -> None:
        super().__init__()
        self._backend = _TrackingBackend()
        self._pool._network_backend = self._backend

    def abort(self) -> None:
        """Cut every connection of this transport; requests in flight fail at once."""
        self._backend.abort()
