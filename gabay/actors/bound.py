"""The broker (and its settings) that ``gabay.actors`` set up, for the actor modules.

The actor modules read it from Dramatiq instead of importing ``gabay.actors``: that package imports
them, so importing it back would be an import cycle (which type checkers cannot resolve either).
"""

from __future__ import annotations

import dramatiq

from gabay.broker import GabayBroker


def bound_broker() -> GabayBroker:
    """Dramatiq's current broker, which importing ``gabay.actors`` made a GabayBroker."""
    broker = dramatiq.get_broker()
    assert isinstance(broker, GabayBroker), "import gabay.actors, which sets up the broker"
    return broker
