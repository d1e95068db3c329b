"""The form response worker: ``process_form_response.send(submission)`` -> job id.

``send()`` validates the submission (InvalidInput for bad input, nothing enqueued), creates the
job record and enqueues on ``form-response-processing`` (see :mod:`gabay.actors.validated`). The
worker validates again, then runs :func:`gabay.feedback.pipeline.process`. Final errors (bad
input, an email Brevo rejects, an email that may have gone out too long ago to re-send safely)
go to the dead-letter queue at once; transient ones (Brevo 429/5xx/unreachable, Brevo's list of
sent emails unreadable, Redis) are retried with backoff, a 429 after the
``x-sib-ratelimit-reset`` seconds Brevo asked for.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from gabay.actors.bound import bound_broker
from gabay.actors.callbacks import callback_when_finished
from gabay.actors.validated import validated_actor
from gabay.cluster.intake import OwnershipLost
from gabay.errors import EmailRejected, EmailRetryable, EmailUncertain, InvalidInput, ProviderHeld
from gabay.feedback.graded import needs_grading
from gabay.feedback.pipeline import FeedbackContext, enqueue_record, job_id_of, process
from gabay.feedback.submission import parse_submission, tenant_of
from gabay.llm.held import wait_for_budget
from gabay.mail.delivery import Hook
from gabay.queues import FORM_RESPONSE, GRADING
from gabay.store.identity import person_id

#: Retry policy: 2, 4, 8, ... s (at most 2 min) for 8 retries, about 6 minutes in all. A retry
#: after an unanswered send first asks Brevo's list of sent emails (see gabay.mail.delivery), and
#: one that does send again stays inside Brevo's 30-minute idempotency window.
MAX_RETRIES = 8
MAX_RETRY_AFTER_MS = 15 * 60 * 1000
FINAL_ERRORS = (InvalidInput, EmailRejected, EmailUncertain)

#: The grading worker's actor (gabay.actors.grading), the step before this one.
GRADE_ACTOR = "grade_form_response"

broker = bound_broker()
settings = broker.settings

ACTOR_OPTIONS: dict[str, Any] = {
    "queue_name": FORM_RESPONSE,
    "max_retries": MAX_RETRIES,
    "min_backoff": 2_000,
    "max_backoff": 120_000,
    "throws": FINAL_ERRORS,
    "time_limit": 10 * 60 * 1000,
    "max_concurrency": settings.form_response_concurrency,
    "rate_limit": settings.form_response_rate_limit,
    # fair share of the cap between teachers (see gabay.limits.leases)
    "tenant_of": lambda submission: tenant_of(submission, settings.feedback_tenant),
    # the submission (names, addresses) travels as a claim check (gabay.cluster.claim_check)
    "claim_check": lambda submission: people_in(submission),
}


def people_in(submission: Any) -> list[str]:
    """The pseudonymous ids of the student and teacher a submission message names."""
    found = []
    for role in ("student", "teacher"):
        person = submission.get(role) if isinstance(submission, dict) else None
        if isinstance(person, dict) and isinstance(person.get("email"), str):
            found.append(person_id(person["email"]))
    return found

context = FeedbackContext.build(settings, broker.client, guard=broker.ownership.check,
                                enqueue=broker.enqueue)


def prepare(submission: Any) -> tuple[str, tuple[Any, ...] | None]:
    """Validate ``submission`` and create its job; the same response id always gives the same job id.

    A submission with answers to grade goes to the grading worker first, which hands it on.
    """
    valid = parse_submission(submission)
    job_id = enqueue_record(context, valid)
    if needs_grading(valid):
        broker.enqueue(dramatiq.Message(queue_name=GRADING, actor_name=GRADE_ACTOR,
                                        args=(valid.as_message(),), kwargs={}, options={},
                                        message_id=job_id))
        return job_id, None
    return job_id, (valid.as_message(),)


def run(submission: Any, hook: Hook | None = None) -> None:
    """The body of the actor (shared with test variants that inject a hook)."""
    message = CurrentMessage.get_current_message()
    retries = int(message.options.get("retries", 0)) if message is not None else 0
    try:
        process(context, submission, final_attempt=retries >= MAX_RETRIES, hook=hook)
    except OwnershipLost:
        raise  # the run that owns the job now sends its callback
    except ProviderHeld as exc:  # every LLM provider busy: wait, without spending a retry
        wait_for_budget(broker.due, broker.intake, exc)
    except EmailRetryable as exc:
        callback_when_finished(job_id_of(submission), submission)
        if exc.retry_after is None:
            raise
        delay = min(int(exc.retry_after * 1000), MAX_RETRY_AFTER_MS)
        raise dramatiq.Retry(str(exc), delay=delay) from exc
    except Exception:
        callback_when_finished(job_id_of(submission), submission)
        raise
    callback_when_finished(job_id_of(submission), submission)


@validated_actor(prepare, **ACTOR_OPTIONS)
def process_form_response(submission: dict[str, Any]) -> None:
    """Personal feedback on one exam submission, emailed to the student exactly once."""
    run(submission)
