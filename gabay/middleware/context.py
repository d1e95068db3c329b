"""Where a middleware finds its settings and Redis client: given explicitly, else the broker's."""

from __future__ import annotations

import redis
from dramatiq import Broker

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
