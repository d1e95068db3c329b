"""What a teacher's digest says about one period, gathered from the results store (pure counting).

- new submissions: those to the teacher's exams submitted in the period, per exam with the mean
  percentage, and the mean over all of them;
- items needing attention: the flagged items (:mod:`gabay.reports.flags`) of the stored analytics
  of the exams that had submissions in the period;
- questions generated and the share of drafts accepted: every question request recorded in the
  period (question requests name no teacher, so this is the platform's figure);
- feedback emails: sent (the period's stored submissions, each stored once its email went out)
  and failed for good in the period (``email_failures``: rejected, uncertain, out of retries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gabay.analytics.models import ExamReport
from gabay.digests.periods import Period
from gabay.reports.flags import Thresholds, exam_flags
from gabay.store.results import ResultsStore


@dataclass(frozen=True)
class ExamLine:
    form_id: str
    title: str
    submissions: int
    mean_percent: float | None


@dataclass(frozen=True)
class AttentionLine:
    title: str
    question_id: str
    reason: str
    detail: str


@dataclass(frozen=True)
class DigestFacts:
    period: Period
    exams: list[ExamLine] = field(default_factory=list)
    mean_percent: float | None = None
    attention: list[AttentionLine] = field(default_factory=list)
    question_requests: int = 0
    questions_accepted: int = 0
    drafts_rejected: int = 0
    emails_sent: int = 0
    emails_failed: int = 0

    @property
    def submissions(self) -> int:
        return sum(e.submissions for e in self.exams)

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted questions over all drafts judged (accepted + rejected); None without drafts."""
        judged = self.questions_accepted + self.drafts_rejected
        return self.questions_accepted / judged if judged else None

    @property
    def empty(self) -> bool:
        """Nothing of the teacher's own happened: no digest is sent for such a period."""
        return self.submissions == 0 and self.emails_failed == 0


def _mean(values: list[int]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def gather(results: ResultsStore, teacher_id: str, period: Period, thresholds: Thresholds) -> DigestFacts:
    rows = results.teacher_activity(teacher_id, period.start, period.end)
    exams: list[ExamLine] = []
    for form_id in dict.fromkeys(r.form_id for r in rows):
        mine = [r for r in rows if r.form_id == form_id]
        exams.append(ExamLine(form_id, mine[0].title, len(mine),
                              _mean([r.percent for r in mine if r.percent is not None])))
    attention: list[AttentionLine] = []
    for exam in exams:
        stored = results.analytics(exam.form_id)
        if stored is not None:
            report = ExamReport.model_validate(stored.report)
            attention += [AttentionLine(exam.title, f.question_id, f.reason, f.detail)
                          for f in exam_flags(report, thresholds)]
    questions = results.questions_between(period.start, period.end)
    return DigestFacts(
        period=period, exams=exams, mean_percent=_mean([r.percent for r in rows if r.percent is not None]),
        attention=attention, question_requests=len(questions),
        questions_accepted=sum(a for a, _ in questions), drafts_rejected=sum(r for _, r in questions),
        emails_sent=sum(1 for r in rows if r.email_state == "sent"),
        emails_failed=results.email_failures_between(teacher_id, period.start, period.end),
    )
