"""Signed result callbacks: POST a job's result to the URL the request named.

The body is the job's result as compact JSON; the header ``X-Gabay-Signature: sha256=<hex>`` is
the HMAC-SHA256 of the raw body with ``CALLBACK_SECRET``. Without a secret the header is left
out (and a warning is logged once per delivery), so a receiver must not trust unsigned calls.
A failed delivery raises CallbackFailed; the callback actor retries it with backoff and
dead-letters it at the end, so it is never silently lost. Only the URL's host is ever logged
(a URL may carry a token in its query).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr

import gabay
from gabay.errors import CallbackFailed
from gabay.jobs import JobRecord
from gabay.settings import Settings

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Gabay-Signature"
CALLBACK_TIMEOUT = 10.0


def sign(body: bytes, secret: SecretStr) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``."""
    digest = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(body: bytes, signature: str, secret: SecretStr) -> bool:
    """What a receiver does: compare in constant time."""
    return hmac.compare_digest(sign(body, secret), signature)


def callback_payload(record: JobRecord) -> dict[str, Any]:
    return {
        "job_id": record.id,
        "kind": record.kind,
        "status": str(record.status),
        "result": record.result,
        "error": record.error,
        "cost_usd": record.cost_usd,
        "total_tokens": record.total_tokens,
    }


def callback_body(record: JobRecord) -> bytes:
    return json.dumps(callback_payload(record), separators=(",", ":"), sort_keys=True).encode()


def post_callback(url: str, body: bytes, settings: Settings, job_id: str) -> int:
    """POST the body; return the HTTP status, or raise CallbackFailed."""
    host = urlsplit(url).netloc
    headers = {"Content-Type": "application/json", "User-Agent": f"gabay/{gabay.__version__}",
               "X-Gabay-Job": job_id}
    if settings.callback_secret is not None:
        headers[SIGNATURE_HEADER] = sign(body, settings.callback_secret)
    else:
        logger.warning("CALLBACK_SECRET is not set: the callback of job %s to %s is unsigned", job_id, host)
    try:
        response = requests.post(url, data=body, headers=headers, timeout=CALLBACK_TIMEOUT,
                                 allow_redirects=False)
    except requests.RequestException as exc:
        raise CallbackFailed(f"callback to {host} failed: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        raise CallbackFailed(f"callback to {host} answered HTTP {response.status_code}")
    logger.info("Delivered the callback of job %s to %s (HTTP %d)", job_id, host, response.status_code)
    return response.status_code
