"""A callback delivery recorded on its job: ``record.callback`` says pending, delivered or failed.

Every attempt is counted on the job record with its error, so that a callback the receiver keeps
refusing is visible where the platform and the operators look (``gabay job ID``, the dashboard,
``gabay.client``) instead of leaving a "succeeded" job with no trace. The actor that calls
:func:`deliver` retries it with backoff; on its last attempt a failure marks the callback
``failed`` for good (and the message goes to the dead-letter queue). A delivered callback is
never posted again: a duplicate message changes nothing.
"""

from __future__ import annotations

import time

from dramatiq.middleware import CurrentMessage

from gabay.callbacks.post import callback_body, host_of, post_callback
from gabay.errors import CallbackFailed
from gabay.jobs import CallbackState, JobRecord, JobStore
from gabay.settings import Settings


def deliver(store: JobStore, settings: Settings, job_id: str, url: str, *,
            last_attempt: bool) -> CallbackState:
    """POST the job's outcome to ``url`` and record the attempt; re-raise a failure (to retry it)."""
    record = store.get(job_id)
    if record.callback is not None and record.callback.state == "delivered":
        return record.callback
    try:
        status = post_callback(url, callback_body(record), settings, job_id)
    except Exception as exc:
        error = (str(exc) if isinstance(exc, CallbackFailed)
                 else f"callback to {host_of(url)} failed: {type(exc).__name__}")
        store.update(job_id, lambda r: _attempted(r, error=error, failed=last_attempt))
        raise
    updated = store.update(job_id, lambda r: _attempted(r, status_code=status))
    assert updated.callback is not None
    return updated.callback


def _attempted(record: JobRecord, *, error: str | None = None, failed: bool = False,
               status_code: int | None = None) -> None:
    state = record.callback or CallbackState()
    if state.state == "delivered":
        return  # another run delivered it meanwhile
    state.attempts += 1
    state.updated_at = time.time()
    if error is None:
        state.state, state.status_code = "delivered", status_code
    else:
        state.state, state.last_error = ("failed" if failed else "pending"), error
    record.callback = state


def last_attempt(max_retries: int) -> bool:
    """Is the message running now the callback actor's last attempt (or not a message at all)?"""
    message = CurrentMessage.get_current_message()
    return message is None or int(message.options.get("retries", 0)) >= max_retries
