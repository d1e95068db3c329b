"""Signed result callbacks of question jobs: the common callbacks of :mod:`gabay.callbacks`.

Kept under this name for receivers and tests that import ``gabay.questions.callbacks.verify``.
"""

from __future__ import annotations

from gabay.callbacks.post import CALLBACK_TIMEOUT, callback_body, callback_payload, post_callback
from gabay.callbacks.signing import SIGNATURE_HEADER, sign, verify

__all__ = ["CALLBACK_TIMEOUT", "SIGNATURE_HEADER", "callback_body", "callback_payload", "post_callback",
           "sign", "verify"]
