"""Enqueue a message without the check of ``send()``: what a corrupt or foreign message looks like.

``send``, ``send_with_options`` and ``message`` of gabay's entry actors all validate (see
gabay.actors.validated); tests of the worker's own checks need a message that skipped them.
"""

from __future__ import annotations

from typing import Any

import dramatiq


def enqueue_unchecked(actor: dramatiq.Actor[..., Any], *args: Any, **options: Any) -> dramatiq.Message[Any]:
    """Dramatiq's own message of ``actor`` with these arguments, enqueued as it is."""
    message = dramatiq.Actor.message_with_options(actor, args=args, **options)
    return actor.broker.enqueue(message)
