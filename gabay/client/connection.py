"""An asyncio Redis client (``redis.asyncio``) from the settings, as ``gabay.cluster.connection.connect``.

The same URL resolution (REDIS_URL, REDIS_HOST, the local or embedded Redis), password, timeouts,
health checks, TLS options and Sentinel URLs; only the client class differs.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from gabay.cluster.connection import (
    describe_url,
    is_sentinel_url,
    parse_sentinel_url,
    resolve_redis_url,
    tls_options,
)
from gabay.errors import ConfigError
from gabay.settings import Settings


def connect_async(settings: Settings, url: str | None = None) -> aioredis.Redis:
    """An asyncio client of the resolved Redis (no connection is opened before the first command)."""
    url = url or resolve_redis_url(settings)
    options: dict[str, Any] = {"socket_timeout": settings.redis_socket_timeout,
                               "socket_connect_timeout": settings.redis_connect_timeout,
                               "health_check_interval": settings.redis_health_check_interval}
    password = settings.redis_password.get_secret_value() if settings.redis_password else ""
    if is_sentinel_url(url):
        target = parse_sentinel_url(url)
        sentinel_options = dict(options)
        if settings.redis_sentinel_password is not None:
            sentinel_options["password"] = settings.redis_sentinel_password.get_secret_value()
        sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_options, **options)
        data: dict[str, Any] = {}
        if primary_password := target.password or password:
            data["password"] = primary_password
        if target.username:
            data["username"] = target.username
        return sentinel.master_for(target.service, db=target.db, **data)
    if not url.startswith("unix:"):
        options["socket_keepalive"] = True
    if password:
        options["password"] = password
    if url.startswith("rediss:"):
        options.update(tls_options(settings, url))
    try:
        return aioredis.Redis.from_url(url, **options)
    except ValueError as exc:
        raise ConfigError(f"invalid Redis URL {describe_url(url)}: {exc}") from None
