"""Helpers for the dashboard tests: the WSGI app on the test Redis, and a real server process."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
from pathlib import Path

import redis
import requests
from pydantic import SecretStr

from gabay.broker import GabayBroker
from gabay.settings import Settings
from gabay.web import DashboardWeb, create_app
from gabay.web.sources import build_sources
from tests.support.polling import wait_for
from tests.support.processes import ROOT

PASSWORD = "correct horse battery staple"


def with_password(settings: Settings, password: str | None = PASSWORD, username: str = "admin") -> Settings:
    return settings.model_copy(update={
        "dashboard_username": username,
        "dashboard_password": SecretStr(password) if password is not None else None,
    })


def make_app(settings: Settings, client: redis.Redis, broker: GabayBroker) -> DashboardWeb:
    return create_app(build_sources(settings, client), broker)


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DashboardServer:
    """``gabay dashboard`` as a real process on a free loopback port."""

    def __init__(self, env: dict[str, str], log_path: Path, password: str = PASSWORD) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "DASHBOARD_USERNAME": "admin", "DASHBOARD_PASSWORD": password}
        self.log_path = log_path
        self.popen: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> DashboardServer:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        argv = [sys.executable, "-m", "gabay.cli", "dashboard", "--host", "127.0.0.1",
                "--port", str(self.port)]
        self.popen = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=self._log,
                                      stderr=subprocess.STDOUT)

        def answering() -> bool:
            assert self.popen is not None
            if self.popen.poll() is not None:
                raise AssertionError(f"dashboard exited with {self.popen.returncode}:\n{self.log()}")
            try:
                return requests.get(self.url + "/healthz", timeout=2).status_code in (200, 503)
            except requests.ConnectionError:
                return False

        wait_for(answering, timeout=timeout, interval=0.1, message="the dashboard to answer")
        return self

    def stop(self) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        return self.popen.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
