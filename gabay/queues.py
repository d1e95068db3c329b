"""The queue names: part of the contract with the platform, so they live in one place."""

from __future__ import annotations

from gabay.errors import UnknownQueue

RETRIEVAL = "retrieval"
GENERATION = "generation"
VALIDATION = "validation"
FORM_RESPONSE = "form-response-processing"
GRADING = "grading"
ANALYTICS = "analytics"
SYSTEM = "system"
BACKUPS = "backups"
# -- teacher reports and digests (gabay/reports, gabay/digests) --
REPORTS = "reports"
DIGESTS = "digests"

QUESTION_QUEUES = (RETRIEVAL, GENERATION, VALIDATION)
FORM_RESPONSE_QUEUES = (FORM_RESPONSE,)
ALL_QUEUES = (*QUESTION_QUEUES, GRADING, ANALYTICS, FORM_RESPONSE, SYSTEM, BACKUPS, REPORTS, DIGESTS)


def consumed_queues(enable_form_response_worker: bool) -> tuple[str, ...]:
    """The queues a worker process consumes with this setting."""
    if enable_form_response_worker:
        return ALL_QUEUES
    return tuple(q for q in ALL_QUEUES if q not in FORM_RESPONSE_QUEUES)


def check_queue_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """Return the names, or raise UnknownQueue naming the first one gabay does not know."""
    for name in names:
        if name not in ALL_QUEUES:
            raise UnknownQueue(f"unknown queue {name!r}; known queues: {', '.join(ALL_QUEUES)}")
    return list(names)
