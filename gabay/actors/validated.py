"""Actors that validate at ``send``: ``actor.send(payload)`` checks the payload, returns a job id.

The one pattern of gabay's entry points (``generate_questions``, ``process_form_response``). The
actor's ``prepare`` validates the payload (raising gabay.errors.InvalidInput in the caller, with
nothing enqueued), creates or finds the job record, and returns the job id with the arguments of
the message to enqueue, or None when nothing must be enqueued (the job already ran or is running).

Every Actor method goes through ``prepare``, and every message they build has the job id as its
``message_id``, so the id a caller gets back is the id of the job record and of the message in
the dead-letter queue:

- ``send(payload)`` -> the job id;
- ``send_with_options(args=(payload,), delay=..., priority=..., **options)`` -> the Message
  (``message.message_id`` is the job id); when the job is already queued, running or done,
  nothing is enqueued and the message returned is the one that would have been;
- ``message(payload)`` / ``message_with_options(args=(payload,), **options)`` -> that Message,
  not enqueued (for ``dramatiq.pipeline`` or ``group``): the job record exists from then on.

:meth:`ValidatedActor.send_prepared` enqueues arguments that were prepared already (a worker
handing a job on), without validating again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import dramatiq

from gabay.limits.priority import PRIORITY_OPTION, parse_priority

#: payload -> (job id, message arguments or None when nothing must be enqueued).
Prepare = Callable[[Any], tuple[str, tuple[Any, ...] | None]]


class ValidatedActor(dramatiq.Actor[..., None]):
    """A Dramatiq actor whose ``send`` takes one payload, validates it and returns its job id."""

    def __init__(self, fn: Callable[..., None], *, prepare: Prepare, **kwargs: Any) -> None:
        self.prepare = prepare
        super().__init__(fn, **kwargs)

    def send(self, payload: Any) -> str:  # type: ignore[override]
        """Validate and enqueue ``payload``; InvalidInput (nothing enqueued) when it is bad."""
        return self.send_with_options(args=(payload,)).message_id

    def send_with_options(self, *, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
                          delay: timedelta | int | None = None, **options: Any) -> dramatiq.Message[None]:
        """``send`` with Dramatiq's options (``delay`` in ms, ``priority``, ``max_retries``...)."""
        message, new = self._prepared(args, kwargs, options)
        return self.broker.enqueue(message, delay=_ms(delay)) if new else message

    def message_with_options(self, *, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
                             **options: Any) -> dramatiq.Message[None]:
        """The validated message of the payload in ``args``, not enqueued; its id is the job id."""
        return self._prepared(args, kwargs, options)[0]

    def send_prepared(self, job_id: str, args: tuple[Any, ...], *, delay: timedelta | int | None = None,
                      **options: Any) -> dramatiq.Message[None]:
        """Enqueue arguments ``prepare`` already returned for ``job_id`` (no second validation)."""
        message = super().message_with_options(args=args, **options).copy(message_id=job_id)
        return self.broker.enqueue(message, delay=_ms(delay))

    def _prepared(self, args: tuple[Any, ...], kwargs: dict[str, Any] | None,
                  options: dict[str, Any]) -> tuple[dramatiq.Message[None], bool]:
        if len(args) != 1 or kwargs:
            raise TypeError(f"{self.actor_name} takes one payload: args=(payload,), no kwargs")
        if PRIORITY_OPTION in options:
            parse_priority(options[PRIORITY_OPTION])  # ValueError before the job exists
        job_id, prepared = self.prepare(args[0])
        message = super().message_with_options(args=prepared or args, **options)
        return message.copy(message_id=job_id), prepared is not None


def _ms(delay: timedelta | int | None) -> int | None:
    return int(delay.total_seconds() * 1000) if isinstance(delay, timedelta) else delay


def validated_actor(prepare: Prepare, **options: Any) -> Callable[[Callable[..., None]], ValidatedActor]:
    """``@dramatiq.actor(**options)`` whose ``send`` goes through ``prepare``."""

    def decorate(fn: Callable[..., None]) -> ValidatedActor:
        actor = dramatiq.actor(fn, actor_class=functools.partial(ValidatedActor, prepare=prepare), **options)
        assert isinstance(actor, ValidatedActor)
        return actor

    return decorate
