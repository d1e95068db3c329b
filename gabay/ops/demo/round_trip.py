"""Demo step: a probe through a real worker process, timed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from gabay.errors import GabayError
from gabay.ops.demo.context import Demo


def demo_round_trip(demo: Demo) -> None:
    """A probe through a real worker process."""
    # Imported when the step runs: importing gabay.actors reads the settings and builds the broker.
    from gabay.actors import broker, probe

    token = uuid.uuid4().hex
    started = time.monotonic()
    probe.send(token)
    answer = _poll(lambda: broker.client.get(demo.settings.keys.probe(token)), 30)
    demo.say(f"Round trip through worker {answer.decode()}: {(time.monotonic() - started) * 1000:.0f} ms")


def _poll(read: Callable[[], bytes | None], timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = read()
        if value:
            return value
        time.sleep(0.05)
    raise GabayError(f"no result within {timeout:g} s; see the worker log above")
