"""Protection of state-changing requests against cross-site requests.

Browsers send cached basic-auth credentials with any request to the dashboard, also one made by
another site, so every POST must prove it comes from our own page:

* its ``Origin`` (or, without one, its ``Referer``) names this very host; and
* for our own actions, it carries a token that is an HMAC, under a secret of this server process,
  of the authenticated user and of a random session id kept in an HttpOnly, SameSite=Strict cookie.

Dramatiq-dashboard's own forms carry its double-submit cookie; they get the origin check.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

SESSION_COOKIE = "gabay_session"
TOKEN_HEADER = "X-CSRF-Token"
TOKEN_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SESSION_RE = re.compile(r"^[0-9a-f]{32}$")


def same_origin(request: Request) -> bool:
    """True when the request's Origin, or else its Referer, names the host it was sent to."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        return False
    return urlsplit(source).netloc.lower() == request.host.lower()


class CsrfGuard:
    """Issues and checks per-session tokens bound to the authenticated user."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def token(self, user: str, session: str) -> str:
        message = f"{user}\x00{session}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    @staticmethod
    def session(request: Request) -> str | None:
        value = request.cookies.get(SESSION_COOKIE, "")
        return value if _SESSION_RE.match(value) else None

    def ensure_session(self, request: Request, response: Response) -> str:
        """The request's session id, or a new one set as a cookie on ``response``."""
        session = self.session(request)
        if session is None:
            session = secrets.token_hex(16)
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="Strict",
                                secure=request.scheme == "https", path=request.script_root or "/")
        return session

    def rejection(self, request: Request, user: str) -> str | None:
        """Why this POST must be refused, or None when it is a genuine request of our page."""
        if not same_origin(request):
            return "cross-origin request refused (Origin or Referer must name this host)"
        session = self.session(request)
        supplied = request.headers.get(TOKEN_HEADER) or request.form.get(TOKEN_FIELD, "")
        if session is None or not hmac.compare_digest(supplied.encode(),
                                                      self.token(user, session).encode()):
            return "missing or invalid CSRF token (reload the page)"
        return None
