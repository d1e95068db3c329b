"""A form response actor whose attempt lingers right after its email was handed to the mailer.

Between the send and the sent record's ``sent`` state the record says ``sending``: the window in
which a cancel must be ignored (the email may be out). Sent with the job id as message id, like
the real actor's messages.
"""

from __future__ import annotations

import time
from typing import Any

import dramatiq

from gabay.actors.feedback import ACTOR_OPTIONS, run

LINGER_SECONDS = 1.0


def linger_after_send(reached: str) -> None:
    if reached == "sent":
        time.sleep(LINGER_SECONDS)


@dramatiq.actor(actor_name="feedback_linger_after_send", **ACTOR_OPTIONS)
def linger_after_send_actor(submission: dict[str, Any]) -> None:
    run(submission, hook=linger_after_send)
