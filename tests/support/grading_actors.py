"""Variants of the grading actor that SIGKILL their own worker process once, at a chosen point.

"Once" is a flag in Redis, so it holds across processes: the run after the kill goes on normally.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import dramatiq

from gabay.actors import broker, settings
from gabay.actors.grading import grade_and_hand_off
from gabay.queues import GRADING


def die_once_at(point: str) -> Any:
    def hook(reached: str) -> None:
        if reached == point and broker.client.set(settings.keys.test("grading-hook", point),
                                                  os.getpid(), nx=True):
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


@dramatiq.actor(actor_name="grading_die_after_grade", queue_name=GRADING, max_retries=5,
                min_backoff=100, max_backoff=1000)
def die_after_grade(submission: dict[str, Any]) -> None:
    grade_and_hand_off(submission, hook=die_once_at("graded"))


@dramatiq.actor(actor_name="grading_die_after_hand_off", queue_name=GRADING, max_retries=5,
                min_backoff=100, max_backoff=1000)
def die_after_hand_off(submission: dict[str, Any]) -> None:
    grade_and_hand_off(submission, hook=die_once_at("handed_off"))
