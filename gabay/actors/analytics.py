"""The analytics worker: ``analyse_exam(form_id)`` on queue ``analytics``.

The feedback pipeline stores each graded submission (its grade and the exam's answer key) and then
asks for the exam's analytics, debounced (:mod:`gabay.feedback.analytics_request`): the message
waits ``ANALYTICS_DEBOUNCE_SECONDS``, and the submissions stored meanwhile enqueue nothing more.
The actor deletes the exam's pending key first, then reads every stored grade of the exam that is
not anonymised and was computed against the exam's current key, computes the
:class:`~gabay.analytics.models.ExamReport` and upserts it (``exam_analytics``, one row per exam).
Deleting first means a submission stored after the read asks again: no grade is left out. A
recomputation is idempotent, so a retry (the database was down) or a second run costs only time.
"""

from __future__ import annotations

import logging

import dramatiq

from gabay.actors.bound import bound_broker
from gabay.analytics.report import analyse_exam as exam_report
from gabay.errors import InvalidInput
from gabay.feedback.analytics_request import ANALYSE_ACTOR
from gabay.grading.grade import Grade
from gabay.grading.key import parse_answer_key
from gabay.queues import ANALYTICS
from gabay.store.records import StoredAnalytics
from gabay.store.results import ResultsStore

logger = logging.getLogger(__name__)

broker = bound_broker()
settings = broker.settings
results = ResultsStore.from_settings(settings)


def refresh_exam_analytics(store: ResultsStore, form_id: str) -> StoredAnalytics | None:
    """Recompute and store the exam's report from its stored grades; None when it has no key.

    Grades of another key (a submission graded before the key changed) are left out: the report
    describes the current key only.
    """
    exam = store.exam(form_id)
    if exam is None or not isinstance(exam.get("answer_key"), dict):
        logger.info("Exam %s has no stored answer key; no analytics", form_id)
        return None
    key = parse_answer_key(exam["answer_key"])
    digest = key.digest()
    grades = [Grade.model_validate(g) for g in store.exam_grades(form_id)
              if g.get("answer_key_digest") == digest and g.get("exam_id") == key.exam_id]
    report = exam_report(key, grades)
    stored = store.record_analytics(form_id, report.model_dump(mode="json"), len(grades))
    logger.info("Exam %s analysed: %d grades, %d complete", form_id, len(grades), report.summary.count)
    return stored


@dramatiq.actor(actor_name=ANALYSE_ACTOR, queue_name=ANALYTICS, max_retries=5, min_backoff=2_000,
                max_backoff=60_000, throws=(InvalidInput,), time_limit=5 * 60 * 1000)
def analyse_exam(form_id: str) -> None:
    """Recompute one exam's analytics (enqueued, debounced, by the feedback pipeline)."""
    broker.client.delete(settings.keys.analytics_pending(form_id))  # first: later grades ask again
    refresh_exam_analytics(results, form_id)
