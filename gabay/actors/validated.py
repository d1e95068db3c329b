"""Actors that validate at ``send``: ``actor.send(payload)`` checks the payload, returns a job id.

The one pattern of gabay's entry points (``generate_questions``, ``process_form_response``). The
actor's ``prepare`` validates the payload (raising gabay.errors.InvalidInput in the caller, with
nothing enqueued), creates or finds the job record, and returns the job id with the arguments of
the message to enqueue, or None when nothing must be enqueued (the job already ran or is running).
``send_with_options`` stays Dramatiq's own and does not validate; the worker validates again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import dramatiq

#: payload -> (job id, message arguments or None when nothing must be enqueued).
Prepare = Callable[[Any], tuple[str, tuple[Any, ...] | None]]


class ValidatedActor(dramatiq.Actor[..., None]):
    """A Dramatiq actor whose ``send`` takes one payload, validates it and returns its job id."""

    def __init__(self, fn: Callable[..., None], *, prepare: Prepare, **kwargs: Any) -> None:
        self.prepare = prepare
        super().__init__(fn, **kwargs)

    def send(self, payload: Any) -> str:  # type: ignore[override]
        """Validate and enqueue ``payload``; InvalidInput (nothing enqueued) when it is bad."""
        job_id, args = self.prepare(payload)
        if args is not None:
            self.send_with_options(args=args)
        return job_id


def validated_actor(prepare: Prepare, **options: Any) -> Callable[[Callable[..., None]], ValidatedActor]:
    """``@dramatiq.actor(**options)`` whose ``send`` goes through ``prepare``."""

    def decorate(fn: Callable[..., None]) -> ValidatedActor:
        actor = dramatiq.actor(fn, actor_class=functools.partial(ValidatedActor, prepare=prepare), **options)
        assert isinstance(actor, ValidatedActor)
        return actor

    return decorate
