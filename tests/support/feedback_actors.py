"""Variants of the form response actor that fail or die at a chosen point, once.

They run the real pipeline with a hook (see gabay.mail.delivery): the first time the hook reaches its
point (a flag in Redis, so "first" holds across processes), the variant raises or SIGKILLs its own
worker process. Later attempts run normally.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import dramatiq

from gabay.actors import broker, settings
from gabay.actors.feedback import ACTOR_OPTIONS, run


def first_time(point: str) -> bool:
    return bool(broker.client.set(settings.keys.test("feedback-hook", point), os.getpid(), nx=True))


def fail_once_at(point: str) -> Any:
    def hook(reached: str) -> None:
        if reached == point and first_time(point):
            raise RuntimeError(f"test failure after {point}")

    return hook


def die_once_after_send(reached: str) -> None:
    if reached == "sent" and first_time("die"):
        os.kill(os.getpid(), signal.SIGKILL)


@dramatiq.actor(actor_name="feedback_fail_after_send", **ACTOR_OPTIONS)
def fail_after_send(submission: dict[str, Any]) -> None:
    run(submission, hook=fail_once_at("sent"))


@dramatiq.actor(actor_name="feedback_fail_after_record", **ACTOR_OPTIONS)
def fail_after_record(submission: dict[str, Any]) -> None:
    run(submission, hook=fail_once_at("recorded"))


@dramatiq.actor(actor_name="feedback_die_after_send", **ACTOR_OPTIONS)
def die_after_send(submission: dict[str, Any]) -> None:
    run(submission, hook=die_once_after_send)
