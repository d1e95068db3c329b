"""One POST of a job's outcome to the URL its request named.

The body is the job's outcome as compact JSON (:func:`callback_body`), signed with
``CALLBACK_SECRET`` (:mod:`gabay.callbacks.signing`). Without a secret the header is left out
(and a warning is logged once per delivery), so a receiver must not trust unsigned calls. Only
the URL's host is ever logged or recorded (a URL may carry a token in its query).
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import requests

import gabay
from gabay.callbacks.signing import SIGNATURE_HEADER, sign
from gabay.errors import CallbackFailed
from gabay.jobs import JobRecord
from gabay.settings import Settings

logger = logging.getLogger(__name__)

CALLBACK_TIMEOUT = 10.0


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


def host_of(url: str) -> str:
    return urlsplit(url).netloc


def post_callback(url: str, body: bytes, settings: Settings, job_id: str) -> int:
    """POST the body; return the HTTP status, or raise CallbackFailed (naming the host only)."""
    host = host_of(url)
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
