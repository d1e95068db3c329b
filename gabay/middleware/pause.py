"""Placeholder: Pause is being written (see the middleware issue)."""

from __future__ import annotations

from dramatiq import Middleware


class Pause(Middleware):
    """Not implemented yet."""
