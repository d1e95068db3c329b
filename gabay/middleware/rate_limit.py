"""Placeholder: RateLimits is being written (see the middleware issue)."""

from __future__ import annotations

from dramatiq import Middleware


class RateLimits(Middleware):
    """Not implemented yet."""

    @property
    def actor_options(self) -> set[str]:
        return {"rate_limit"}
