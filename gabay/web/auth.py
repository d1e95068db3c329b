"""Who may use the dashboard: HTTP basic authentication and the bind rule for running without it.

Credentials are compared with :func:`hmac.compare_digest`, and both the user name and the password
are always compared, so that the time of an answer does not tell which one was wrong. Without a
password the dashboard may only listen on a loopback address; then it also refuses requests whose
``Host`` is not a loopback name, so that a web page using DNS rebinding cannot reach it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from pydantic import SecretStr
from werkzeug.wrappers import Request

from gabay.errors import ConfigError

logger = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "[::1]"}


def is_loopback(host: str) -> bool:
    """True for a loopback IP address such as 127.0.0.1 or ::1 (names are not resolved)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, password: SecretStr | None) -> None:
    """Refuse to listen beyond loopback without a password (ConfigError with the fix)."""
    if password is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve the dashboard on {host!r} without authentication: set "
            "DASHBOARD_PASSWORD (and DASHBOARD_USERNAME, default 'admin'), or listen on 127.0.0.1"
        )


class BasicAuth:
    """HTTP basic authentication against DASHBOARD_USERNAME / DASHBOARD_PASSWORD."""

    realm = "gabay dashboard"

    def __init__(self, username: str, password: SecretStr | None) -> None:
        self._username = username.encode()
        self._password = password.get_secret_value().encode() if password is not None else None

    @property
    def enabled(self) -> bool:
        """False when no password is configured (loopback only, said in the page header)."""
        return self._password is not None

    def authenticate(self, request: Request) -> str | None:
        """The authenticated user name, or None when the request must be refused."""
        if self._password is None:
            return ANONYMOUS if self._local_host(request) else None
        auth = request.authorization
        if auth is None or auth.type != "basic":
            return None
        user_ok = hmac.compare_digest((auth.username or "").encode(), self._username)
        password_ok = hmac.compare_digest((auth.password or "").encode(), self._password)
        return self._username.decode() if user_ok & password_ok else None

    @staticmethod
    def _local_host(request: Request) -> bool:
        hostname = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
        return hostname.lower() in LOOPBACK_NAMES or is_loopback(hostname)
