"""Where a limit's option comes from: the message's options, else its actor's."""

from __future__ import annotations

from typing import Any

from dramatiq import Broker, Message


def option_of(broker: Broker, message: Message, name: str) -> Any:
    """The option ``name`` of the message, else of its actor; None when neither sets it."""
    value = message.options.get(name)
    if value is None:
        value = broker.get_actor(message.actor_name).options.get(name)
    return value
