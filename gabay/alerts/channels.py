"""Channels and the fan-out: every configured channel gets each notification, independently.

A channel raises :class:`~gabay.errors.AlertDeliveryFailed` when it could not deliver (after its
own retries). The :class:`Notifier` runs the channels side by side, so a slow or failing one
neither delays nor stops the others, and reports which delivered, which failed for good and which
may succeed on a later try.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from gabay.alerts.notification import Notification
from gabay.errors import AlertDeliveryFailed

logger = logging.getLogger(__name__)


class Channel(Protocol):
    """Sends one notification; raises AlertDeliveryFailed when it could not."""

    name: str

    def deliver(self, notification: Notification) -> None: ...


@dataclass
class DeliveryReport:
    """What one fan-out achieved, by channel name."""

    delivered: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)  # for good (a 4xx, a rejected email)
    retryable: set[str] = field(default_factory=set)

    @property
    def finished(self) -> set[str]:
        """Channels not worth trying again for this notification."""
        return self.delivered | self.failed


class Notifier:
    """Sends each notification through every channel, side by side."""

    def __init__(self, channels: list[Channel]) -> None:
        self.channels = channels

    @property
    def names(self) -> set[str]:
        return {channel.name for channel in self.channels}

    def send(self, notification: Notification, skip: frozenset[str] = frozenset()) -> DeliveryReport:
        """Deliver through every channel not in ``skip`` and wait for all of them."""
        report = DeliveryReport()
        todo = [channel for channel in self.channels if channel.name not in skip]
        if not todo:
            return report
        with ThreadPoolExecutor(max_workers=len(todo), thread_name_prefix="gabay-alert") as pool:
            futures = {channel.name: pool.submit(channel.deliver, notification) for channel in todo}
        for name, future in futures.items():
            exc = future.exception()
            if exc is None:
                report.delivered.add(name)
                logger.info("Alert %s (%s %s) sent by %s", notification.dedupe_key, notification.rule,
                            notification.state, name)
            elif isinstance(exc, AlertDeliveryFailed):
                (report.failed if exc.permanent else report.retryable).add(name)
                logger.warning("Alert %s not sent by %s: %s", notification.dedupe_key, name, exc)
            else:
                report.retryable.add(name)
                logger.error("Alert %s not sent by %s: unexpected %s", notification.dedupe_key, name,
                             type(exc).__name__)
        return report
