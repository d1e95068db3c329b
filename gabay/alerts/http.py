"""One POST with retries: what the Slack and webhook channels share.

A 429 waits as long as the server's ``Retry-After`` says (Slack sends it; capped at
``MAX_RETRY_AFTER``), a 5xx, a timeout or a connection error waits ``backoff`` seconds doubling;
any other 4xx is final (:class:`AlertDeliveryFailed` with ``permanent=True``). The URL is a secret
(a Slack webhook URL is its own credential): it never appears in an error or a log line, not even
through the exception texts of ``requests``, which quote it, or urllib3's DEBUG line of each
request, which names its path (:class:`HideFromLogs` masks it there).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import requests

from gabay.errors import AlertDeliveryFailed

logger = logging.getLogger(__name__)

MAX_RETRY_AFTER = 60.0
MAX_BACKOFF = 30.0
#: The library loggers that name a request's path (urllib3 logs each request at DEBUG level).
LIBRARY_LOGGERS = ("urllib3.connectionpool",)


class HideFromLogs(logging.Filter):
    """Masks a secret URL's path and query in the records of the HTTP libraries' loggers.

    Equal for equal secrets, so installing it twice adds one filter (``Logger.addFilter``).
    """

    def __init__(self, url: str) -> None:
        super().__init__()
        parts = urlsplit(url)
        self.secrets = tuple(part for part in (parts.path, parts.query) if len(part) > 1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HideFromLogs) and other.secrets == self.secrets

    def __hash__(self) -> int:
        return hash(self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(secret in text for secret in self.secrets):
            for secret in self.secrets:
                text = text.replace(secret, "**********")
            record.msg, record.args = text, None
        return True

    def install(self) -> None:
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).addFilter(self)


def post_with_retries(session: requests.Session, url: str, body: bytes, headers: Mapping[str, str], *,
                      channel: str, timeout: float, retries: int, backoff: float = 1.0,
                      sleep: Callable[[float], None] = time.sleep) -> requests.Response:
    """POST ``body`` until a 2xx answer; raise AlertDeliveryFailed naming ``channel`` otherwise."""
    problem = "no attempt"
    for attempt in range(retries + 1):
        wait = min(backoff * 2 ** attempt, MAX_BACKOFF)
        try:
            response = session.post(url, data=body, headers=dict(headers), timeout=timeout,
                                    allow_redirects=False)
        except requests.RequestException as exc:
            problem = f"{type(exc).__name__} (no answer)"
        else:
            status = response.status_code
            if 200 <= status < 300:
                return response
            problem = f"HTTP {status} {response.text[:100].strip()}".strip()
            if status == 429:
                wait = retry_after(response, default=wait)
            elif status < 500:
                raise AlertDeliveryFailed(f"{channel} refused the alert: {problem}", permanent=True)
        if attempt < retries:
            logger.info("Alert channel %s: %s; trying again in %.1f s", channel, problem, wait)
            sleep(wait)
    raise AlertDeliveryFailed(f"{channel} did not take the alert after {retries + 1} attempt(s): {problem}")


def retry_after(response: requests.Response, default: float) -> float:
    """Seconds from a ``Retry-After: <seconds>`` header (capped), else ``default``."""
    try:
        return min(max(float(response.headers.get("Retry-After", "")), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return default
