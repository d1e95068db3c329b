"""Placeholder: ConcurrencyCaps is being written (see the middleware issue)."""

from __future__ import annotations

from dramatiq import Middleware


class ConcurrencyCaps(Middleware):
    """Not implemented yet."""

    @property
    def actor_options(self) -> set[str]:
        return {"max_concurrency"}
