"""The analytics of one exam: :func:`analyse_exam` turns its grades into an :class:`ExamReport`.

A pure function of the answer key and the grades (no Redis, no clock): the same grades give the
same report. See :mod:`gabay.analytics.matrix` for which grades count where.
"""

from __future__ import annotations

from collections.abc import Sequence

from gabay.analytics.items import item_report
from gabay.analytics.matrix import group_size, score_table
from gabay.analytics.models import ExamReport
from gabay.analytics.reliability import cronbach_alpha, kr20
from gabay.analytics.summary import DEFAULT_BINS, summarise
from gabay.grading.grade import Grade
from gabay.grading.key import AnswerKey


def analyse_exam(key: AnswerKey, grades: Sequence[Grade], *, bins: int = DEFAULT_BINS) -> ExamReport:
    """Statistics of the exam, of each item and of its reliability, from ``grades`` under ``key``.

    InvalidInput when a grade is of another exam or key version (re-grade it first).
    """
    if bins < 1:
        raise ValueError("bins must be at least 1")
    table = score_table(key, grades)
    return ExamReport(
        exam_id=key.exam_id, answer_key_version=key.version, summary=summarise(table, bins),
        items=[item_report(table, item) for item in key.items],
        group_size=group_size(len(table.complete)), kr20=kr20(table),
        cronbach_alpha=cronbach_alpha(table),
    )
