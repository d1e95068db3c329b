"""A daemon thread that runs a function every few seconds until it is stopped.

Several middleware keep such a thread per worker process (pause flags, recovery, the registry,
cluster control): started at worker boot, stopped at worker shutdown. A thread that reads state
announced on a signal channel (:mod:`gabay.cluster.wakeups`) is given the signal's event: it then
ticks at once when told, and only every ``quiet_interval`` seconds while ``heard`` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Periodic:
    """Calls ``tick()`` every ``interval`` seconds on a daemon thread named ``name``."""

    def __init__(self, name: str, interval: float, tick: Callable[[], None], *,
                 signal: threading.Event | None = None, heard: threading.Event | None = None,
                 quiet_interval: float | None = None) -> None:
        self.name = name
        self.interval = interval
        self.tick = tick
        self.signal = signal
        self.heard = heard
        self.quiet_interval = quiet_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and wait up to ``timeout`` seconds for a running tick to end."""
        self._stop.set()
        if self.signal is not None:
            self.signal.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        if self.signal is None:
            while not self._stop.wait(self.interval):
                self.tick()
            return
        while not self._stop.is_set():
            quiet = self.quiet_interval is not None and self.heard is not None and self.heard.is_set()
            self.signal.wait(self.quiet_interval if quiet else self.interval)
            self.signal.clear()
            if self._stop.is_set():
                return
            self.tick()
