"""Placeholder: ClusterControl is being written (see the middleware issue)."""

from __future__ import annotations

from dramatiq import Middleware


class ClusterControl(Middleware):
    """Not implemented yet."""
