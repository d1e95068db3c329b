"""What one exam's report shows, gathered from the store's rows: pure data, no PDF, no I/O.

The per-student table is the only place with a student's identity; the report goes to the
exam's teacher. The store keeps no student names (pseudonymous ids), so the label of a student
is what the caller knows (the address of the submission's feedback email while its job record is
kept, else the pseudonym).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from gabay.analytics.models import ExamReport
from gabay.reports.flags import ItemFlag, Thresholds, exam_flags


@dataclass(frozen=True)
class StudentRow:
    label: str
    response_id: str
    submitted_at: dt.datetime | None
    points: float
    max_points: float
    percent: float | None
    status: str


@dataclass(frozen=True)
class ReportContent:
    form_id: str
    title: str
    subject: str
    analytics_computed_at: dt.datetime
    generated_at: dt.datetime
    report: ExamReport
    flags: list[ItemFlag]
    students: list[StudentRow]

    def flags_of(self, question_id: str) -> list[ItemFlag]:
        return [f for f in self.flags if f.question_id == question_id]


def student_rows(grades: list[dict[str, Any]], labels: dict[str, str],
                 submitted: dict[str, dt.datetime]) -> list[StudentRow]:
    """One row per grade (``Grade`` dumps), best score first; ``labels``: response id -> label."""
    rows = [StudentRow(label=labels.get(g["response_id"], g["response_id"]), response_id=g["response_id"],
                       submitted_at=submitted.get(g["response_id"]), points=float(g["points"]),
                       max_points=float(g["total_max_points"]), percent=g.get("percent"),
                       status=str(g["status"]))
            for g in grades]
    return sorted(rows, key=lambda r: (-r.points, r.label))


def report_content(exam: dict[str, Any], report: dict[str, Any], computed_at: dt.datetime,
                   students: list[StudentRow], thresholds: Thresholds,
                   generated_at: dt.datetime) -> ReportContent:
    """The content of the report of ``exam`` (a store row) from its analytics (an ``ExamReport`` dump)."""
    parsed = ExamReport.model_validate(report)
    return ReportContent(form_id=str(exam["form_id"]), title=str(exam["title"]),
                         subject=str(exam["subject"]), analytics_computed_at=computed_at,
                         generated_at=generated_at, report=parsed,
                         flags=exam_flags(parsed, thresholds), students=students)
