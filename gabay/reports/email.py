"""The report email: ``report.html`` and ``report.txt`` with the PDF attached, to the exam's teacher.

Same Jinja environment and CSS inlining as the feedback email (:mod:`gabay.mail.render`); the
exam's title and the teacher's name reach the templates as variables, shown as text.
"""

from __future__ import annotations

import re

from gabay.mail.render import Address, Attachment, RenderedEmail, inline_css, template_environment
from gabay.reports.content import ReportContent
from gabay.settings import Settings


def pdf_name(content: ReportContent) -> str:
    """``report-photosynthesis-check.pdf``: the attachment's name (an allowed extension for Brevo)."""
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", content.form_id)[:80].strip("._") or "exam"
    return f"report-{readable}.pdf"


def render_report_email(settings: Settings, content: ReportContent, pdf: bytes, teacher: Address,
                        report_id: str) -> RenderedEmail:
    summary = content.report.summary
    mean = summary.mean_percent.value
    subject_line = f"Exam report: {content.title}"
    context = {
        "subject_line": subject_line,
        "greeting": f"Hello {teacher.name}," if teacher.name else "Hello,",
        "title": content.title,
        "subject": content.subject,
        "complete": summary.count,
        "mean_percent": "n/a" if mean is None else f"{mean:.1f}%",
        "flagged": len({f.question_id for f in content.flags}),
    }
    env = template_environment()
    return RenderedEmail(
        sender=Address(settings.email_sender, settings.email_sender_name),
        to=teacher,
        subject=subject_line[:200],
        html=inline_css(env.get_template("report.html").render(context)),
        text=env.get_template("report.txt").render(context),
        tags=["gabay-report", f"form:{content.form_id}"[:100]],
        headers={"X-Gabay-Report-Id": report_id},
        attachments=[Attachment(pdf_name(content), pdf)],
    )
