"""Which model name to send: a configured model past its announced shutdown date is replaced.

``gpt-4o-mini`` (the default chat and feedback model) shuts down on 2027-01-14
(``gabay.settings.MODEL_SHUTDOWN_DATES``). From that date on, calls go to its successor, so that a
deployment nobody reconfigured keeps working instead of failing every call with HTTP 404; the
operator sees the switch in the logs and in the ``model_warnings`` of ``gabay`` (90 days before).
Setting ``OPENAI_CHAT_MODEL`` / ``OPENAI_FEEDBACK_MODEL`` explicitly to a model in service
avoids the switch.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging

from gabay.settings import MODEL_SHUTDOWN_DATES

logger = logging.getLogger(__name__)

#: Retired model -> the model that replaces it from its shutdown date on.
MODEL_SUCCESSORS = {"gpt-4o-mini": "gpt-6-luna", "gpt-4o-mini-2024-07-18": "gpt-6-luna"}


def model_in_service(name: str, today: dt.date | None = None) -> str:
    """``name``, or its successor once ``name``'s shutdown date has come (UTC date)."""
    today = today or dt.datetime.now(dt.UTC).date()
    shutdown = MODEL_SHUTDOWN_DATES.get(name)
    successor = MODEL_SUCCESSORS.get(name)
    if shutdown is None or successor is None or today < shutdown:
        return name
    _warn_switch(name, successor, shutdown)
    return successor


@functools.lru_cache(maxsize=16)
def _warn_switch(name: str, successor: str, shutdown: dt.date) -> None:
    logger.warning("Model %r was shut down on %s: calls use %r instead; set OPENAI_CHAT_MODEL / "
                   "OPENAI_FEEDBACK_MODEL to choose", name, shutdown.isoformat(), successor)
