"""The PDF of one exam's report, drawn with reportlab (pure Python; the chart is reportlab's own).

Sections in order: the title block, the summary statistics, the score histogram, the
item-analysis table (difficulty, discrimination, distractor shares), the flagged items and the
per-student table. Every number is formatted by the helpers below, so a reader (and the tests,
which read the PDF back) finds the same figures as the stored analytics.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, StyleSheet1, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from gabay.analytics.measure import Measure
from gabay.analytics.models import Distractors, ExamSummary, ItemReport
from gabay.reports.content import ReportContent

#: Characters of an option's text shown in the distractor column.
OPTION_CHARS = 22
LEGEND = ("! flagged (see Flagged items). Difficulty: mean share of the points (high = easy). r: "
          "point-biserial correlation of the item with the rest of the exam. D: share of the points in "
          "the top 27% minus in the bottom 27%. n/a: too few submissions.")
GRID = TableStyle([
    ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
    ("FONTSIZE", (0, 0), (-1, -1), 8),
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef7")),
    ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#9aa5b1")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
])


def number(measure: Measure, digits: int = 2) -> str:
    """``0.67``, or ``n/a`` when the statistic is undefined (too few submissions)."""
    return "n/a" if measure.value is None else f"{measure.value:.{digits}f}"


def points(value: float) -> str:
    return f"{value:g}"


def share(value: float) -> str:
    return f"{round(100 * value)}%"


def option_shares(distractors: Distractors | None) -> str:
    """``Stroma 17% | *Thylakoid membranes 67%``: each option's share, the correct one starred."""
    if distractors is None:
        return ""
    parts = [f"{'*' if o.correct else ''}{o.option[:OPTION_CHARS]} {share(o.share)}"
             for o in distractors.options]
    if distractors.no_answer:
        parts.append(f"blank {share(distractors.no_answer_share)}")
    return " | ".join(parts)


def build_pdf(content: ReportContent) -> bytes:
    """The report as PDF bytes (A4)."""
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                                 topMargin=15 * mm, bottomMargin=15 * mm,
                                 title=f"Exam report: {content.title}", author="gabay",
                                 subject=content.form_id)
    styles = getSampleStyleSheet()
    cell = ParagraphStyle("cell", parent=styles["BodyText"], fontSize=8, leading=10)
    story: list[Flowable] = [
        *_title_block(content, styles),
        Paragraph("Summary", styles["Heading2"]), _summary_table(content),
        Paragraph("Score distribution", styles["Heading2"]), _histogram(content.report.summary),
        Paragraph("Item analysis", styles["Heading2"]), _items_table(content, cell),
        Paragraph(LEGEND, cell),
        CondPageBreak(40 * mm), Paragraph("Flagged items", styles["Heading2"]), *_flags(content, styles),
        CondPageBreak(40 * mm), Paragraph("Students", styles["Heading2"]), _students_table(content, cell),
    ]
    document.build(story)
    return buffer.getvalue()


def _title_block(content: ReportContent, styles: StyleSheet1) -> list[Flowable]:
    summary = content.report.summary
    facts = (f"Subject: {escape(content.subject)} &nbsp; Exam id: {escape(content.form_id)}<br/>"
             f"Submissions analysed: {summary.count + summary.excluded_needs_review} &nbsp; "
             f"Analytics of {content.analytics_computed_at:%Y-%m-%d %H:%M} UTC &nbsp; "
             f"Generated {content.generated_at:%Y-%m-%d %H:%M} UTC")
    return [Paragraph(escape(content.title), styles["Title"]), Paragraph(facts, styles["BodyText"]),
            Spacer(1, 4 * mm)]


def _summary_table(content: ReportContent) -> Table:
    summary, report = content.report.summary, content.report
    rows = [
        ["Complete submissions", str(summary.count), "Awaiting review", str(summary.excluded_needs_review)],
        ["Maximum points", points(summary.max_points), "Mean percent", number(summary.mean_percent, 1)],
        ["Mean", number(summary.mean), "Median", number(summary.median)],
        ["SD (population)", number(summary.sd_population), "SD (sample)", number(summary.sd_sample)],
        ["KR-20", number(report.kr20), "Cronbach's alpha", number(report.cronbach_alpha)],
    ]
    table = Table(rows, colWidths=[40 * mm, 35 * mm, 40 * mm, 35 * mm], hAlign="LEFT")
    table.setStyle(TableStyle([("FONTSIZE", (0, 0), (-1, -1), 9),
                               ("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold"),
                               ("FONTNAME", (2, 0), (2, -1), "Helvetica-Bold"),
                               ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#9aa5b1"))]))
    return table


def _histogram(summary: ExamSummary) -> Drawing:
    """Submissions per score band (percent of the maximum), as a bar chart."""
    drawing = Drawing(170 * mm, 55 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 12 * mm, 10 * mm, 150 * mm, 40 * mm
    counts = [b.count for b in summary.histogram] or [0]
    chart.data = [counts]
    chart.categoryAxis.categoryNames = [f"{b.lower:g}-{b.upper:g}" for b in summary.histogram] or ["-"]
    chart.categoryAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = max(max(counts), 1)
    chart.valueAxis.valueStep = max(1, (max(counts) + 4) // 5)
    chart.valueAxis.labels.fontSize = 7
    chart.bars[0].fillColor = colors.HexColor("#3b6ea5")
    drawing.add(chart)
    drawing.add(String(0, 52 * mm, "submissions per score band (% of the maximum)", fontSize=7))
    return drawing


def _item_row(item: ItemReport, flagged: bool, cell: ParagraphStyle) -> list[object]:
    return [item.question_id + (" !" if flagged else ""), item.type.replace("_", " "),
            f"{item.answered}/{item.graded}", number(item.difficulty), number(item.point_biserial),
            number(item.upper_lower), Paragraph(escape(option_shares(item.distractors)), cell)]


def _items_table(content: ReportContent, cell: ParagraphStyle) -> Table:
    header: list[object] = ["Item", "Type", "Answered", "Difficulty", "r (pt-bis)", "D (27%)",
                            "Option shares (* correct)"]
    rows: list[list[object]] = [header]
    rows += [_item_row(item, bool(content.flags_of(item.question_id)), cell) for item in content.report.items]
    table = Table(rows, colWidths=[16 * mm, 22 * mm, 16 * mm, 16 * mm, 16 * mm, 15 * mm, 79 * mm],
                  repeatRows=1, hAlign="LEFT")
    table.setStyle(GRID)
    return table


def _flags(content: ReportContent, styles: StyleSheet1) -> list[Flowable]:
    if not content.flags:
        return [Paragraph("No item is flagged.", styles["BodyText"])]
    rows: list[list[object]] = [["Item", "Why", "Detail"]]
    rows += [[f.question_id, f.reason, f.detail[:60]] for f in content.flags]
    table = Table(rows, colWidths=[20 * mm, 50 * mm, 110 * mm], repeatRows=1, hAlign="LEFT")
    table.setStyle(GRID)
    return [table]


def _students_table(content: ReportContent, cell: ParagraphStyle) -> Table:
    rows: list[list[object]] = [["Student", "Response", "Submitted (UTC)", "Points", "Percent", "Status"]]
    for student in content.students:
        submitted = f"{student.submitted_at:%Y-%m-%d %H:%M}" if student.submitted_at else ""
        percent = "n/a" if student.percent is None else f"{student.percent:.1f}%"
        rows.append([Paragraph(escape(student.label), cell), Paragraph(escape(student.response_id), cell),
                     submitted, f"{points(student.points)} / {points(student.max_points)}", percent,
                     student.status.replace("_", " ")])
    table = Table(rows, colWidths=[50 * mm, 38 * mm, 28 * mm, 22 * mm, 18 * mm, 24 * mm], repeatRows=1,
                  hAlign="LEFT")
    table.setStyle(GRID)
    return table
