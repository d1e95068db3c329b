"""The grading worker: ``grade_form_response`` on queue ``grading``, the step before feedback.

``process_form_response.send(submission)`` sends a submission whose answers have a key but no
points here first (grading -> feedback). The actor grades it against that key
(:func:`gabay.feedback.graded.grade_once`: the grade is kept on the feedback job's record, so a
retry does not grade or pay again) and then enqueues the feedback message, whose worker scores
the submission with the grade's points. The email's exactly-once rules are the feedback
worker's: a grading retry after it enqueued the feedback sends nothing twice.
"""

from __future__ import annotations

from typing import Any

import dramatiq

from gabay.actors.feedback import GRADE_ACTOR, context, process_form_response
from gabay.errors import InvalidInput
from gabay.feedback.graded import grade_once
from gabay.feedback.submission import job_id_for, parse_submission
from gabay.queues import GRADING


@dramatiq.actor(actor_name=GRADE_ACTOR, queue_name=GRADING, max_retries=5, min_backoff=2_000,
                max_backoff=60_000, throws=(InvalidInput,), time_limit=5 * 60 * 1000)
def grade_form_response(submission: dict[str, Any]) -> None:
    """Grade one exam submission against its answer key, then hand it to the feedback worker."""
    valid = parse_submission(submission)
    grade_once(context.settings, context.store, job_id_for(valid.response_id), valid)
    process_form_response.send_with_options(args=(valid.as_message(),))
