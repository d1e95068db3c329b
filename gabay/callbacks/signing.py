"""The signature of a callback: ``X-Gabay-Signature: sha256=<hex HMAC-SHA256 of the raw body>``.

The key is ``CALLBACK_SECRET``; a receiver recomputes the HMAC of the bytes it received and
compares in constant time (:func:`verify`).
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr

SIGNATURE_HEADER = "X-Gabay-Signature"


def sign(body: bytes, secret: SecretStr) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``."""
    digest = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(body: bytes, signature: str, secret: SecretStr) -> bool:
    """What a receiver does: compare in constant time."""
    return hmac.compare_digest(sign(body, secret), signature)
