"""A job whose every provider is held by its budget waits, without spending a retry.

When the shared provider budget has no room (or a 429 holds the key cluster-wide), the chain
raises :class:`~gabay.errors.ProviderHeld` with the time at which there will be room. A stage
actor then defers its message to that time (:func:`gabay.cluster.deferral.defer`: it keeps its id
and retry count and never reaches the dead-letter queue) instead of failing and burning retries
in a storm.
"""

from __future__ import annotations

from typing import NoReturn

from dramatiq.middleware import CurrentMessage

from gabay.cluster.deferral import defer
from gabay.cluster.due import DueSet
from gabay.cluster.intake import Intake
from gabay.errors import ProviderHeld

#: Shortest wait of a held message, ms (a hold of a few ms is not worth a round trip sooner).
MIN_WAIT_MS = 200


def wait_for_budget(due: DueSet, intake: Intake, held: ProviderHeld) -> NoReturn:
    """Defer the current message until the budget has room (re-raises outside a worker)."""
    message = CurrentMessage.get_current_message()
    if message is None:
        raise held
    defer(due, intake, message, max(held.retry_in_ms, MIN_WAIT_MS), "provider budget")
    raise AssertionError("defer() skips the message by raising")  # pragma: no cover
