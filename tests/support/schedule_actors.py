"""A test-only actor for scheduled runs: it records each run (slot, message id, pid) in Redis.

``runs_key(tag)`` is the list the runs of the schedule whose argument is ``tag`` go to, so that the
test process can check that each slot ran once, and which process ran it.
"""

from __future__ import annotations

import json
import os

import dramatiq
from dramatiq.middleware import CurrentMessage

from gabay.actors import broker, settings
from gabay.queues import SYSTEM


def runs_key(tag: str) -> str:
    return settings.keys.test("scheduled", tag)


@dramatiq.actor(queue_name=SYSTEM, max_retries=0)
def scheduled_tick(tag: str) -> None:
    """Record this run: its schedule's slot, its message id, this process."""
    message = CurrentMessage.get_current_message()
    assert message is not None
    broker.client.rpush(runs_key(tag), json.dumps({
        "slot": message.options.get("schedule_slot"), "schedule": message.options.get("schedule"),
        "message_id": message.message_id, "pid": os.getpid()}))
