"""JSON answers and JSON errors, with the security headers every answer carries."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
PAGE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def json_response(data: Any, status: int = 200) -> Response:
    body = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    return Response(body, status=status, mimetype="application/json")


def json_error(status: int, message: str, **extra: Any) -> Response:
    return json_response({"error": message, "status": status, **extra}, status=status)


def secure(response: Response, *, page: bool = False) -> Response:
    """Add the security headers (and the content security policy for our own pages)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if page:
        response.headers["Content-Security-Policy"] = PAGE_CSP
    return response
