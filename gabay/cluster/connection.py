"""Where Redis is: the configured one, else one on localhost:6379, else the embedded one."""

from __future__ import annotations

from typing import Any

import redis

from gabay.cluster.embedded_redis import EmbeddedRedis, answers
from gabay.errors import RedisUnavailable
from gabay.settings import Settings

LOCAL_URL = "redis://127.0.0.1:6379"


def resolve_redis_url(settings: Settings) -> str:
    """The URL of the Redis to use; starts the embedded Redis only when none is configured or local."""
    if settings.embedded_redis == "always":
        return _embedded_url(settings)
    if settings.redis_url is not None:
        return settings.redis_url.get_secret_value()
    if settings.redis_host is not None:
        return f"redis://{settings.redis_host}:{settings.redis_port}/{settings.redis_db}"
    local = f"{LOCAL_URL}/{settings.redis_db}"
    if answers(local):
        return local
    if settings.embedded_redis == "never":
        raise RedisUnavailable(
            "no Redis configured (REDIS_URL or REDIS_HOST), none on 127.0.0.1:6379, "
            "and EMBEDDED_REDIS=never"
        )
    return _embedded_url(settings)


def _embedded_url(settings: Settings) -> str:
    return EmbeddedRedis(settings.gabay_data_dir).ensure_running() + f"?db={settings.redis_db}"


def connect(settings: Settings, url: str | None = None) -> redis.Redis:
    """A client for the resolved Redis; the password comes from REDIS_PASSWORD when set.

    No command waits for ever: ``REDIS_SOCKET_TIMEOUT`` bounds every reply (gabay's only
    blocking command waits at most half a second) and ``REDIS_CONNECT_TIMEOUT`` every connect.
    TCP keepalive finds a peer that vanished, and a connection idle for
    ``REDIS_HEALTH_CHECK_INTERVAL`` seconds is PINGed before it is used again, so a Redis that
    restarted costs a reconnect, not a failed command. Commands are not retried here: the
    workers' loops retry with backoff, where a second attempt is known to be harmless.
    """
    url = url or resolve_redis_url(settings)
    kwargs: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_connect_timeout,
        "health_check_interval": settings.redis_health_check_interval,
    }
    if not url.startswith("unix:"):
        kwargs["socket_keepalive"] = True  # TCP only
    password = settings.redis_password.get_secret_value() if settings.redis_password else ""
    if password:
        kwargs["password"] = password
    return redis.Redis.from_url(url, **kwargs)


def ping(client: redis.Redis) -> None:
    """Raise RedisUnavailable (without the URL, which may hold a password) when Redis is down."""
    try:
        client.ping()
    except redis.RedisError as exc:
        raise RedisUnavailable(f"Redis does not answer: {type(exc).__name__}") from exc


def describe_url(url: str) -> str:
    """The URL with any password masked, for logs and CLI output."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"
