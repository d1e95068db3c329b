"""The grading worker: ``grade_form_response`` on queue ``grading``, the step before feedback.

``process_form_response.send(submission)`` sends a submission whose answers have a key but no
points here first (grading -> feedback). The actor grades it against that key
(:func:`gabay.feedback.graded.grade_once`: the grade is kept on the feedback job's record, so a
retry does not grade or pay again) and then enqueues the feedback message, whose worker scores
the submission with the grade's points. The email's exactly-once rules are the feedback
worker's: a grading retry after it enqueued the feedback sends nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from gabay.actors.feedback import GRADE_ACTOR, context, people_in, process_form_response
from gabay.errors import InvalidInput
from gabay.feedback.graded import grade_once
from gabay.feedback.submission import job_id_for, parse_submission
from gabay.grading.chain import build_llm_grader
from gabay.grading.exam_regrade import regrade_exam as regrade_stored
from gabay.grading.key import parse_answer_key
from gabay.jobs import LLMCall
from gabay.queues import GRADING

logger = logging.getLogger(__name__)
REGRADE_ACTOR = "regrade_exam"


@dramatiq.actor(actor_name=GRADE_ACTOR, queue_name=GRADING, max_retries=5, min_backoff=2_000,
                max_backoff=60_000, throws=(InvalidInput,), time_limit=5 * 60 * 1000,
                claim_check=people_in)  # the submission travels as a claim check
def grade_form_response(submission: dict[str, Any]) -> None:
    """Grade one exam submission against its answer key, then hand it to the feedback worker."""
    grade_and_hand_off(submission)


def grade_and_hand_off(submission: dict[str, Any], hook: Callable[[str], None] | None = None) -> None:
    """The grading step; ``hook`` is told each point passed ("graded", "handed_off").

    Killed between any two points, the message runs again: the stored grade is reused (the same
    version), and a feedback message enqueued twice still sends one email.
    """
    valid = parse_submission(submission)
    grade_once(context.settings, context.store, job_id_for(valid.response_id), valid)
    if hook is not None:
        hook("graded")
    process_form_response.send_prepared(job_id_for(valid.response_id), (valid.as_message(),))
    if hook is not None:
        hook("handed_off")


@dramatiq.actor(actor_name=REGRADE_ACTOR, queue_name=GRADING, max_retries=5, min_backoff=2_000,
                max_backoff=60_000, throws=(InvalidInput,), time_limit=30 * 60 * 1000)
def regrade_exam(answer_key: dict[str, Any]) -> dict[str, Any]:
    """Re-grade every stored submission of the key's exam; no email is sent again.

    The LLM calls (rubric items whose answer or rubric changed) go to the cost ledger under
    ``regrade:<exam>:v<version>:<message id>:<attempt>``, so a retry adds rows instead of
    replacing the first attempt's.
    """
    key = parse_answer_key(answer_key)
    if context.results is None:
        raise InvalidInput("re-grading needs the results store")
    calls: list[LLMCall] = []
    summary = regrade_stored(context.results, key, llm=build_llm_grader(context.settings, calls.append))
    if calls:
        message = CurrentMessage.get_current_message()
        attempt = message.options.get("retries", 0) if message is not None else 0
        run = f"{message.message_id if message is not None else 'direct'}:{attempt}"
        context.results.record_calls(f"regrade:{key.exam_id}:v{key.version}:{run}", calls)
    if context.analytics is not None:
        context.analytics.request(key.exam_id)
    logger.info("Exam %s re-graded with key version %d: %d new grade versions, %d unchanged",
                key.exam_id, key.version, len(summary.regraded), summary.unchanged)
    return {"exam_id": key.exam_id, "regraded": summary.regraded, "unchanged": summary.unchanged}
