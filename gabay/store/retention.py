"""``DATA_RETENTION_DAYS``: stored submissions older than that are anonymised.

Anonymised rows keep the exam, grades and totals (statistics) and lose the student id, answers,
feedback text and where the email went. Run by ``gabay data retention`` (daily, from cron or the
platform's scheduler); unset, nothing expires and ``gabay data forget`` is the only removal.
"""

from __future__ import annotations

import datetime as dt

from gabay.settings import Settings
from gabay.store.results import ResultsStore


def apply_retention(store: ResultsStore, settings: Settings, now: dt.datetime | None = None) -> int:
    """Anonymise the submissions older than ``DATA_RETENTION_DAYS``; the number changed (0 if unset)."""
    if settings.data_retention_days is None:
        return 0
    now = now or dt.datetime.now(dt.UTC)
    return store.anonymise_before(now - dt.timedelta(days=settings.data_retention_days))
