"""The feedback callback: ``deliver_feedback_callback`` POSTs a feedback job's outcome, signed.

A submission with a ``callback_url`` gets its job's outcome (the question callback's body:
``job_id``, ``kind``, ``status``, ``result``, ``error``...) once the job succeeded or failed for
good. It runs on the feedback queue, so a feedback-only deployment delivers it; retries with
backoff, every attempt recorded on the job (``record.callback``, see gabay.callbacks.delivery),
and dead-lettered at the end with the job showing ``callback.state == "failed"``.
"""

from __future__ import annotations

from typing import Any

import dramatiq

from gabay.actors.bound import bound_broker
from gabay.callbacks.delivery import deliver, last_attempt
from gabay.errors import InvalidInput, JobNotFound
from gabay.jobs import JobStore
from gabay.queues import FORM_RESPONSE

broker = bound_broker()
settings = broker.settings
CALLBACK_RETRIES = settings.callback_max_retries
store = JobStore(broker.client, settings)


# claim_check: the URL (it may carry a token) is kept out of the message, its logs and dead letters
@dramatiq.actor(queue_name=FORM_RESPONSE, max_retries=CALLBACK_RETRIES, min_backoff=1_000,
                max_backoff=120_000, throws=(InvalidInput, JobNotFound), claim_check=lambda *args: ())
def deliver_feedback_callback(job_id: str, url: str) -> None:
    """POST the feedback job's outcome to ``url``; retried with backoff, dead-lettered at the end."""
    deliver(store, settings, job_id, url, last_attempt=last_attempt(CALLBACK_RETRIES))


def callback_when_finished(job_id: str, submission: Any) -> None:
    """Enqueue the callback of a submission that names one, once its job succeeded or failed.

    Called after every run; a job still retrying gets none yet, a delivered callback no second.
    """
    url = submission.get("callback_url") if isinstance(submission, dict) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return
    try:
        record = store.get(job_id)
    except JobNotFound:
        return
    if record.finished and (record.callback is None or record.callback.state != "delivered"):
        message = deliver_feedback_callback.message(job_id, url).copy(message_id=job_id)
        broker.enqueue(message)
