"""Logging an outage once: the first failure of a streak and the recovery, not every retry.

The threads and loops that keep retrying against Redis (recovery, restarts, the monitoring line,
fetches, delayed messages) would otherwise write a line every turn while Redis is away.
"""

from __future__ import annotations

import logging


class Outage:
    """The failure state of one repeated operation, named ``what`` in its log lines."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self.failing = False

    def failed(self, exc: BaseException) -> None:
        """One attempt failed; logged only when it starts a streak."""
        if not self.failing:
            self.logger.warning("%s failed (%s: %s); trying again.", self.what, type(exc).__name__, exc)
        self.failing = True

    def worked(self) -> bool:
        """One attempt worked; True (and logged) when it ends a streak of failures."""
        if not self.failing:
            return False
        self.logger.info("%s works again.", self.what)
        self.failing = False
        return True
