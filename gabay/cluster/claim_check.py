"""Claim check: a message carries a reference to its payload, kept in Redis with a TTL.

A submission holds a student's name and email address. Put in the Dramatiq message, it would be
in every place that shows or logs messages: the queues and the dead-letter queue, the
``/dramatiq/`` pages, Dramatiq's log lines (``process_form_response({'student': ...})``) and
tracebacks. With the claim check, the broker's enqueue (the one place every message goes
through: ``send``, retries, deferrals, requeues) stores the arguments of an actor declared with
``claim_check=`` under ``claim:<ref>`` and enqueues the message with no arguments and the option
``claim_check: <ref>``. The worker fetches the payload back just before the message runs
(:mod:`gabay.middleware.claim_check`); a retry reuses the same reference.

- The payload is written first, in one transaction with its index of subjects (the pseudonymous
  ids of the people whose data it holds, for ``gabay data forget``); when Redis refuses it,
  ``send`` raises ClaimCheckFailed and nothing is enqueued.
- It is deleted when its message succeeded; otherwise it expires after ``CLAIM_CHECK_TTL``
  (8 days: longer than any retry schedule and than the 7 days a dead letter is kept).
- A message whose payload is gone (expired, or its student forgotten) is dead-lettered at once
  with the reason :class:`~gabay.errors.PayloadMissing`, never retried.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import dramatiq
import redis

from gabay.errors import ClaimCheckFailed, PayloadMissing
from gabay.keys import Keys

#: The message option holding the reference (and the actor option naming the subjects function).
CLAIM_OPTION = "claim_check"

#: ``claim_check=`` of an actor: its arguments -> the ids of the people whose data they hold.
Subjects = Callable[..., Iterable[str]]


class ClaimCheck:
    """Stores, fetches and forgets the payloads of claim-checked messages."""

    def __init__(self, client: redis.Redis, keys: Keys, ttl: int) -> None:
        self.client = client
        self.keys = keys
        self.ttl = ttl

    def check_in(self, message: dramatiq.Message, subjects: Subjects) -> dramatiq.Message:
        """The message to enqueue instead of ``message``: its payload stored, a reference in it.

        A message that already carries a reference (a retry, a deferral, a requeue) is returned
        as it is: its payload is stored already. Raises ClaimCheckFailed when Redis refuses.
        """
        if CLAIM_OPTION in message.options:
            return message
        ref = uuid.uuid4().hex
        payload = json.dumps({"args": list(message.args), "kwargs": dict(message.kwargs)},
                             separators=(",", ":"))
        try:
            people = sorted(set(subjects(*message.args, **message.kwargs)))
        except Exception:  # a malformed payload names nobody; the worker rejects it
            people = []
        try:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.set(self.keys.claim(ref), payload, ex=self.ttl)
                for person in people:
                    pipe.sadd(self.keys.claims_of(person), ref)
                    pipe.expire(self.keys.claims_of(person), self.ttl)
                pipe.execute()
        except redis.RedisError as exc:
            raise ClaimCheckFailed(
                f"could not store the payload of a {message.actor_name} message in Redis "
                f"({type(exc).__name__}); nothing was enqueued") from None
        return message.copy(args=(), kwargs={}, options={CLAIM_OPTION: ref})

    def discard(self, message: dramatiq.Message) -> None:
        """Best effort: delete the payload of a message that could not be enqueued after all."""
        ref = message.options.get(CLAIM_OPTION)
        if ref:
            with contextlib.suppress(redis.RedisError):  # else it expires
                self.client.delete(self.keys.claim(str(ref)))

    def claim(self, message: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments of ``message``; PayloadMissing when they expired or were forgotten."""
        ref = str(message.options[CLAIM_OPTION])
        data = self.client.get(self.keys.claim(ref))
        if data is None:
            raise PayloadMissing(
                f"the payload of {message.actor_name} message {message.message_id} is gone "
                f"(claim check {ref}: older than CLAIM_CHECK_TTL or its student was forgotten)")
        payload = json.loads(data)
        return tuple(payload["args"]), dict(payload["kwargs"])

    def release(self, message: Any) -> None:
        """Delete the payload of a message that succeeded (it is not needed again)."""
        self.client.delete(self.keys.claim(str(message.options[CLAIM_OPTION])))

    def forget(self, subject: str) -> int:
        """Delete every payload holding data of ``subject``; returns how many there were."""
        index = self.keys.claims_of(subject)
        refs = [r.decode() for r in self.client.smembers(index)]
        with self.client.pipeline(transaction=True) as pipe:
            for ref in refs:
                pipe.delete(self.keys.claim(ref))
            pipe.delete(index)
            deleted = pipe.execute()
        return sum(int(n) for n in deleted[:len(refs)])
