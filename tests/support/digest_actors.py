"""Variants of the digest actor that fail or die at a chosen point of the send, once.

They run the real ``send_teacher_digest`` body with a hook (see gabay.mail.delivery): the first
time the hook reaches its point (a flag in Redis, so "first" holds across processes), the variant
raises or SIGKILLs its own worker process. Later attempts run normally.
"""

from __future__ import annotations

import os
import signal

import dramatiq

from gabay.actors import broker, settings
from gabay.actors.digests import FINAL_ERRORS, MAX_RETRIES, run
from gabay.queues import DIGESTS

OPTIONS = {"queue_name": DIGESTS, "max_retries": MAX_RETRIES, "min_backoff": 500, "max_backoff": 2_000,
           "throws": FINAL_ERRORS}


def first_time(point: str) -> bool:
    return bool(broker.client.set(settings.keys.test("digest-hook", point), os.getpid(), nx=True))


def fail_once_after_send(reached: str) -> None:
    if reached == "sent" and first_time("fail"):
        raise RuntimeError("test failure after the digest was sent")


def die_once_after_send(reached: str) -> None:
    if reached == "sent" and first_time("die"):
        os.kill(os.getpid(), signal.SIGKILL)


@dramatiq.actor(actor_name="digest_fail_after_send", **OPTIONS)
def fail_after_send(teacher_id: str, period: str, period_start: str) -> None:
    run(teacher_id, period, period_start, hook=fail_once_after_send)


@dramatiq.actor(actor_name="digest_die_after_send", **OPTIONS)
def die_after_send(teacher_id: str, period: str, period_start: str) -> None:
    run(teacher_id, period, period_start, hook=die_once_after_send)
