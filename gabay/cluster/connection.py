"""Where Redis is and how to reach it: the configured one, else one on localhost:6379, else the
embedded one.

A configured URL is ``redis://``, ``unix://``, ``rediss://`` (TLS, see :func:`tls_options`) or a
Sentinel URL (``redis+sentinel://``, see :func:`parse_sentinel_url`), which names the Sentinels
of a replicated Redis instead of one server, so that a failover does not need a new URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import redis
from pydantic import SecretStr
from redis.sentinel import Sentinel, SentinelConnectionPool

from gabay.cluster.embedded_redis import EmbeddedRedis, answers
from gabay.errors import ConfigError, RedisUnavailable
from gabay.settings import Settings

LOCAL_URL = "redis://127.0.0.1:6379"
#: Schemes of a URL of one Redis server (redis-py's ``from_url``).
REDIS_SCHEMES = ("redis", "rediss", "unix")
#: Schemes of a Sentinel URL; ``rediss+sentinel`` (TLS to the Sentinels) is not supported.
SENTINEL_SCHEMES = ("redis+sentinel", "sentinel")
DEFAULT_SENTINEL_PORT = 26379
SENTINEL_URL_FORM = "redis+sentinel://[:password@]host[:port][,host[:port]...]/service_name[/db]"

_ADDRESS = re.compile(r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d{1,5}))?")
#: A query option whose value is a secret (redis-py also takes ``?password=``).
_SECRET_OPTION = re.compile(r"([?&;][^=&;#]*password[^=&;#]*=)[^&;#]*", re.IGNORECASE)


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

    A Sentinel URL gives a client of the current primary: every new connection asks the
    Sentinels where it is, so after a failover the next connect reaches the promoted replica.
    A URL that is not valid raises ConfigError.
    """
    url = url or resolve_redis_url(settings)
    if is_sentinel_url(url):
        try:
            return _sentinel_client(settings, parse_sentinel_url(url))
        except ConfigError as exc:
            raise ConfigError(f"invalid configuration: REDIS_URL: {exc}") from None
    kwargs = _socket_options(settings, tcp=not url.startswith("unix:"))
    if password := _secret(settings.redis_password):
        kwargs["password"] = password
    if url.startswith("rediss:"):
        kwargs.update(tls_options(settings, url))
    setting = "REDIS_URL" if settings.redis_url is not None else "REDIS_HOST/REDIS_PORT/REDIS_DB"
    if url.partition("://")[0].lower() not in REDIS_SCHEMES:
        raise ConfigError(f"invalid configuration: {setting}: invalid Redis URL {describe_url(url)}: "
                          f"Redis URL must specify one of the following schemes "
                          f"({', '.join(s + '://' for s in (*REDIS_SCHEMES, SENTINEL_SCHEMES[0]))})")
    try:
        return redis.Redis.from_url(url, **kwargs)
    except ValueError as exc:  # redis-py's messages name the problem, never the password
        raise ConfigError(f"invalid configuration: {setting}: invalid Redis URL "
                          f"{describe_url(url)}: {exc}") from None


def _socket_options(settings: Settings, *, tcp: bool = True) -> dict[str, Any]:
    """Timeouts, health checks and keepalive: the same for a server, a primary and a Sentinel."""
    options: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_connect_timeout,
        "health_check_interval": settings.redis_health_check_interval,
    }
    if tcp:
        options["socket_keepalive"] = True
    return options


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def tls_options(settings: Settings, url: str) -> dict[str, Any]:
    """redis-py's TLS options of a ``rediss://`` URL from the ``REDIS_TLS_*`` settings.

    ``REDIS_TLS_VERIFY=required`` checks the server's certificate chain and that it names the
    host of the URL, ``optional`` checks only the chain, ``none`` nothing (encryption without
    authentication of the server). An option in the URL's query string (``ssl_ca_certs``,
    ``ssl_cert_reqs``, ``ssl_check_hostname``...) wins over the setting, as redis-py lets it.
    """
    query = parse_qs(url.partition("?")[2])
    verify = query.get("ssl_cert_reqs", [settings.redis_tls_verify])[-1]
    options: dict[str, Any] = {
        "ssl_cert_reqs": settings.redis_tls_verify,
        "ssl_check_hostname": verify == "required",
    }
    files = {"ssl_ca_certs": ("REDIS_TLS_CA_FILE", settings.redis_tls_ca_file),
             "ssl_certfile": ("REDIS_TLS_CERT_FILE", settings.redis_tls_cert_file),
             "ssl_keyfile": ("REDIS_TLS_KEY_FILE", settings.redis_tls_key_file)}
    for option, (name, path) in files.items():
        if path is not None:
            if not path.is_file():
                raise ConfigError(f"invalid configuration: {name}: no such file: {path}")
            options[option] = str(path)
    if "ssl_keyfile" in options and "ssl_certfile" not in options:
        raise ConfigError("invalid configuration: REDIS_TLS_KEY_FILE is set without REDIS_TLS_CERT_FILE")
    return options


@dataclass(frozen=True)
class SentinelURL:
    """A parsed Sentinel URL: the Sentinels to ask, the service (primary) to reach, its database."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def is_sentinel_url(url: str) -> bool:
    """True for ``redis+sentinel://``, ``sentinel://`` and the unsupported ``rediss+sentinel://``."""
    scheme = url.partition("://")[0].lower()
    return scheme in SENTINEL_SCHEMES or scheme.endswith("+sentinel")


def parse_sentinel_url(url: str) -> SentinelURL:
    """``redis+sentinel://[user:password@]host1:26379,host2:26379/<service_name>[/<db>]``.

    ``sentinel://`` is the same. The port defaults to 26379, the database to 0 (as in a
    ``redis://`` URL); an IPv6 address goes in brackets. The password in the URL is the one of
    the Redis servers (it wins over REDIS_PASSWORD); the Sentinels' own password is
    REDIS_SENTINEL_PASSWORD. ``rediss+sentinel://`` (TLS) is not supported, nor query options:
    both raise ConfigError, as does any other malformed URL, with a one-line message that
    never holds the password.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SENTINEL_SCHEMES:
        raise _bad_sentinel_url(url, "the scheme must be redis+sentinel:// or sentinel:// "
                                     "(TLS to Sentinel, rediss+sentinel://, is not supported)")
    userinfo, at, rest = rest.rpartition("@")  # the last @: a password may hold @, / or ?
    if "?" in rest or "#" in rest:
        raise _bad_sentinel_url(url, "query options are not supported in a Sentinel URL; "
                                     "use the REDIS_* settings")
    addresses, _, path = rest.partition("/")
    sentinels = tuple(_sentinel_address(url, part, n) for n, part in enumerate(addresses.split(","), 1))
    service, db = _service_and_db(url, path)
    username, colon, password = userinfo.partition(":")
    return SentinelURL(sentinels, service, db, username=unquote(username) or None,
                       password=unquote(password) if at and colon else None)


def _sentinel_address(url: str, text: str, number: int) -> tuple[str, int]:
    match = _ADDRESS.fullmatch(text)
    if match is None:
        raise _bad_sentinel_url(url, f"Sentinel address {number} is not host[:port] "
                                     "(an IPv6 address goes in brackets)")
    port = int(match["port"] or DEFAULT_SENTINEL_PORT)
    if not 1 <= port <= 65535:
        raise _bad_sentinel_url(url, f"the port of Sentinel address {number} is not in 1-65535")
    return match["ipv6"] or match["host"], port


def _service_and_db(url: str, path: str) -> tuple[str, int]:
    parts = path.split("/")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()  # one trailing slash
    if not parts[0]:
        raise _bad_sentinel_url(url, "no service name after the addresses")
    if len(parts) > 2:
        raise _bad_sentinel_url(url, "the path has more than /service_name/db")
    if len(parts) == 2 and not (parts[1].isascii() and parts[1].isdigit()):
        raise _bad_sentinel_url(url, "the database after the service name is not a number")
    return unquote(parts[0]), int(parts[1]) if len(parts) == 2 else 0


def _bad_sentinel_url(url: str, problem: str) -> ConfigError:
    return ConfigError(f"invalid Sentinel URL {describe_url(url)}: {problem} "
                       f"(expected {SENTINEL_URL_FORM})")


def _sentinel_client(settings: Settings, target: SentinelURL) -> redis.Redis:
    """A client of ``target``'s current primary, with the timeouts of :func:`connect` everywhere.

    The Sentinels are asked with REDIS_SENTINEL_PASSWORD (when set); the primary gets the URL's
    password, else REDIS_PASSWORD.
    """
    options = _socket_options(settings)
    sentinel_options = dict(options)
    if sentinel_password := _secret(settings.redis_sentinel_password):
        sentinel_options["password"] = sentinel_password
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_options, **options)
    data: dict[str, Any] = {}
    if password := target.password or _secret(settings.redis_password):
        data["password"] = password
    if target.username:
        data["username"] = target.username
    return sentinel.master_for(target.service, db=target.db, **data)


def ping(client: redis.Redis) -> None:
    """Raise RedisUnavailable naming the host and port (never the password) when Redis is down."""
    try:
        client.ping()
    except redis.RedisError as exc:
        raise RedisUnavailable(redis_problem(exc, client)) from exc


def redis_address(client: redis.Redis) -> str:
    """Where ``client`` connects, for messages: ``host:port``, the unix socket, or the Sentinels.

    Never the password (it is not part of the answer).
    """
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        sentinels = ",".join(_host_port(s.connection_pool.connection_kwargs)
                             for s in pool.sentinel_manager.sentinels)
        return f"Sentinel service {pool.service_name!r} ({sentinels})"
    return _host_port(pool.connection_kwargs)


def _host_port(kwargs: dict[str, Any]) -> str:
    if kwargs.get("path"):
        return f"unix socket {kwargs['path']}"
    host = str(kwargs.get("host", "localhost"))
    return f"[{host}]:{kwargs.get('port', 6379)}" if ":" in host else f"{host}:{kwargs.get('port', 6379)}"


def redis_problem(exc: BaseException, client: redis.Redis | None = None) -> str:
    """One line saying what went wrong with Redis, naming where when ``client`` is known.

    A refused password names the settings that hold it. The exception's own text is left out (a
    server's error reply may quote a command's arguments), except redis-py's text of a failed
    connect when no client is known, which names the host and port.
    """
    where = f" at {redis_address(client)}" if client is not None else ""
    kind = type(exc).__name__
    if isinstance(exc, redis.AuthenticationError) or "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
        return (f"Redis{where} refused the password ({kind}): check REDIS_PASSWORD or the "
                f"password in REDIS_URL")
    if client is None and isinstance(exc, redis.ConnectionError | redis.TimeoutError) and str(exc):
        # redis-py's own text of a failed connect ("Error 111 connecting to host:port. ...")
        return f"Redis does not answer: {kind} ({str(exc).splitlines()[0]})"
    return f"Redis does not answer{where}: {kind}"


def describe_url(url: str) -> str:
    """The URL with any password masked, for logs, errors and CLI output.

    Everything before the last ``@`` is masked (an unencoded password may hold ``@``, ``/`` or
    ``:``, and a Sentinel URL names several hosts after it), and so is the value of any query
    option named like a password (redis-py takes ``?password=`` too).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    _, at, tail = rest.rpartition("@")
    if at:
        rest = "***@" + tail
    return scheme + sep + _SECRET_OPTION.sub(r"\1***", rest)
