"""Placeholder: Stats is being written (see the middleware issue)."""

from __future__ import annotations

from dramatiq import Middleware


class Stats(Middleware):
    """Not implemented yet."""
