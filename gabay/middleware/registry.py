"""Placeholder: WorkerRegistration is being written (see the middleware issue)."""

from __future__ import annotations

from dramatiq import Middleware


class WorkerRegistration(Middleware):
    """Not implemented yet."""
