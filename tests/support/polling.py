"""Waiting with a deadline instead of sleeping for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02,
             message: str = "condition") -> T:
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {message}")
        time.sleep(interval)


def stays_true(predicate: Callable[[], object], seconds: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` for ``seconds``: False as soon as it is falsy, True if it held throughout.

    For a negative assertion ("nothing starts while paused") a window is needed; this one still
    ends at the first violation, and its last check starts at or after the end of the window.
    """
    deadline = time.monotonic() + seconds
    while True:
        checked_at = time.monotonic()
        if not predicate():
            return False
        if checked_at >= deadline:
            return True
        time.sleep(min(interval, deadline - checked_at))


def assert_stays(predicate: Callable[[], object], seconds: float, message: str,
                 interval: float = 0.02) -> None:
    """Fail the test as soon as ``predicate`` is falsy within ``seconds``."""
    started = time.monotonic()
    if not stays_true(predicate, seconds, interval):
        broken = time.monotonic() - started
        raise AssertionError(f"broken after {broken:.2f} s of the {seconds:g} s window: {message}")
