"""What a middleware reads from its surroundings: settings and Redis client, actor options."""

from __future__ import annotations

from typing import Any

import redis
from dramatiq import Broker, Message

from gabay.errors import ConfigError
from gabay.settings import Settings


def redis_context(broker: Broker, settings: Settings | None, client: redis.Redis | None,
                  who: str) -> tuple[Settings, redis.Redis]:
    """The explicit settings and client, or those of a GabayBroker; ConfigError naming ``who``."""
    settings = settings or getattr(broker, "settings", None)
    client = client or getattr(broker, "client", None)
    if settings is None or client is None:
        raise ConfigError(f"{who} needs a GabayBroker or explicit settings and client")
    return settings, client


def option_of(broker: Broker, message: Message, name: str) -> Any:
    """The option ``name`` of the message, else of its actor; None when neither sets it."""
    value = message.options.get(name)
    if value is None:
        value = broker.get_actor(message.actor_name).options.get(name)
    return value
