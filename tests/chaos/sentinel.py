"""Redis processes of the high-availability tests: a primary with a password, its replica, a
Sentinel watching them, and TLS servers; each on a free port of its own.

Every process is started through :class:`Servers`, which stops them all by pid when the test
ends (also when it failed). ``kill`` is SIGKILL: the server gets no chance to say goodbye, as in
a crash or a lost host.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import redis

from tests.chaos.redis_server import free_port, server_binary
from tests.support.polling import wait_for

SERVICE = "gabaymaster"
DATA_PASSWORD = "data-secret"
SENTINEL_PASSWORD = "sentinel-secret"


class ServerProcess:
    """One redis-server (or Sentinel) process; ``client()`` reaches it with ``client_options``."""

    def __init__(self, name: str, directory: Path, args: list[str], *, port: int,
                 client_options: dict[str, Any]) -> None:
        self.name = name
        self.directory = directory
        self.args = args
        self.port = port
        self.client_options = client_options
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def logfile(self) -> Path:
        return self.directory / f"{self.name}.log"

    def client(self, **overrides: Any) -> redis.Redis:
        options = {"host": "127.0.0.1", "port": self.port, "socket_timeout": 2,
                   "socket_connect_timeout": 2, **self.client_options, **overrides}
        return redis.Redis(**options)

    def start(self) -> ServerProcess:
        argv = [server_binary(), *self.args, "--logfile", str(self.logfile)]
        self.process = subprocess.Popen(argv, cwd=self.directory, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        with self.client() as client:
            wait_for(lambda: self._answers(client), timeout=10, message=f"{self.name} on {self.port}")
        return self

    def _answers(self, client: redis.Redis) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL by pid, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM by pid and wait; SIGKILL when it does not stop in time."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")[-4000:] if self.logfile.exists() else ""


class Servers:
    """The processes one test started, so that teardown stops every one of them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[ServerProcess] = []

    def start(self, name: str, args: list[str], *, port: int,
              client_options: dict[str, Any] | None = None) -> ServerProcess:
        directory = self.directory / name
        directory.mkdir(parents=True, exist_ok=True)
        server = ServerProcess(name, directory, args, port=port, client_options=client_options or {})
        self.started.append(server)
        return server.start()

    def primary(self, name: str = "primary", *, replica_of: ServerProcess | None = None) -> ServerProcess:
        """A data server with ``DATA_PASSWORD``; ``replica_of`` makes it a replica of that one."""
        port = free_port()
        args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.directory / name), "--requirepass", DATA_PASSWORD,
                "--masterauth", DATA_PASSWORD,
                "--repl-diskless-sync-delay", "0"]  # a replica syncs at once, not after 5 s
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of.port)]
        return self.start(name, args, port=port, client_options={"password": DATA_PASSWORD})

    def sentinel(self, primary: ServerProcess, name: str = "sentinel") -> ServerProcess:
        """One Sentinel (quorum 1) watching ``primary`` as ``SERVICE``, with its own password."""
        port = free_port()
        directory = self.directory / name
        directory.mkdir(parents=True, exist_ok=True)
        conf = directory / "sentinel.conf"  # Sentinel rewrites its configuration: a file of its own
        conf.write_text("\n".join([
            f"port {port}",
            "bind 127.0.0.1",
            f"dir {directory}",
            f"requirepass {SENTINEL_PASSWORD}",
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 1",
            f"sentinel auth-pass {SERVICE} {DATA_PASSWORD}",
            f"sentinel down-after-milliseconds {SERVICE} 1000",
            f"sentinel failover-timeout {SERVICE} 3000",
            "",
        ]))
        return self.start(name, [str(conf), "--sentinel"], port=port,
                          client_options={"password": SENTINEL_PASSWORD})

    def stop_all(self) -> None:
        for server in reversed(self.started):
            server.stop()


def in_sync(primary: ServerProcess, replica: ServerProcess) -> bool:
    """True once the replica has its primary's data and the primary counts it as online."""
    with replica.client() as client:
        if client.info("replication").get("master_link_status") != "up":
            return False
    with primary.client() as client:
        info = client.info("replication")
    return any(isinstance(value, dict) and value.get("state") == "online"
               and int(value.get("port", 0)) == replica.port for value in info.values())


def sentinel_knows(sentinel: ServerProcess, replica: ServerProcess) -> bool:
    """True once the Sentinel sees ``replica`` as a healthy replica it could promote."""
    with sentinel.client() as client:
        replicas = client.sentinel_slaves(SERVICE)
    return any(int(r["port"]) == replica.port and r.get("is_slave") and not r.get("is_sdown")
               and not r.get("is_disconnected") and r.get("master-link-status") == "ok"
               for r in replicas)
