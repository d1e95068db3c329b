"""Placeholder: Draining is being written (see the middleware issue)."""

from __future__ import annotations

from dramatiq import Middleware


class Draining(Middleware):
    """Not implemented yet."""
