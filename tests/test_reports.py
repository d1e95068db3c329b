"""The PDF report, read back with pypdf: its figures are the stored analytics' figures.

The exam is the fixed one of tests/support/analytics_data.py (6 students x 5 items, statistics
computed by hand in tests/test_analytics.py); the report is built from its ``ExamReport`` dump
the way the worker builds it from the store.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import pypdf
import pytest

from gabay.analytics.models import ExamReport
from gabay.analytics.report import analyse_exam
from gabay.reports.content import ReportContent, report_content, student_rows
from gabay.reports.flags import NEGATIVE, TOO_EASY, TOO_HARD, UNUSED_DISTRACTOR, Thresholds, exam_flags
from gabay.reports.pdf import build_pdf
from tests.support import analytics_data

COMPUTED = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
EXAM = {"form_id": "photosynthesis-check", "title": "Photosynthesis check", "subject": "Biology"}
NAMES = {"s1": "Maria Santos", "s2": "Jose dela Cruz", "s3": "Ana Lim", "s4": "Juan Bautista",
         "s5": "Liza Soriano", "s6": "Ramon Cruz"}


DEFAULT = Thresholds()


def content(thresholds: Thresholds = DEFAULT, exam: dict[str, str] = EXAM) -> ReportContent:
    grades = analytics_data.graded()
    dump = analyse_exam(analytics_data.key(), grades).model_dump(mode="json")
    rows = student_rows([g.model_dump(mode="json") for g in grades], NAMES, {})
    return report_content(exam, dump, COMPUTED, rows, thresholds, dt.datetime(2026, 12, 2, tzinfo=dt.UTC))


def pdf_text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def figure(measure_value: float | None, digits: int = 2) -> str:
    return "n/a" if measure_value is None else f"{measure_value:.{digits}f}"


def test_the_summary_and_every_item_figure_in_the_pdf_are_the_analytics_figures() -> None:
    report = content()
    text = pdf_text(build_pdf(report))
    analytics: ExamReport = report.report
    summary = analytics.summary

    assert "Photosynthesis check" in text and "Exam id: photosynthesis-check" in text
    lines = [line.strip() for line in text.splitlines()]

    def after(label: str) -> str:
        return lines[lines.index(label) + 1].strip()

    assert after("Complete submissions") == str(summary.count) == "6"
    assert after("Mean") == figure(summary.mean.value) == "2.67"
    assert after("Median") == figure(summary.median.value) == "2.50"
    assert after("SD (population)") == figure(summary.sd_population.value)
    assert after("SD (sample)") == figure(summary.sd_sample.value)
    assert after("Mean percent") == figure(summary.mean_percent.value, 1) == "53.3"
    assert after("KR-20") == figure(analytics.kr20.value)
    assert after("Cronbach's alpha") == figure(analytics.cronbach_alpha.value)

    for item in analytics.items:
        start = next(i for i, line in enumerate(lines) if re.fullmatch(rf"{item.question_id}( !)?", line))
        row = lines[start:start + 6]
        assert row[2] == f"{item.answered}/{item.graded}"
        assert row[3:6] == [figure(item.difficulty.value), figure(item.point_biserial.value),
                            figure(item.upper_lower.value)], item.question_id
    # the hand-computed figures of tests/test_analytics.py
    assert [figure(i.difficulty.value) for i in analytics.items] == ["0.83", "0.67", "0.50", "0.50", "0.17"]


def test_the_histogram_has_a_bar_per_score_band_scaled_to_the_largest_count() -> None:
    report = content()
    text = pdf_text(build_pdf(report))
    bands = report.report.summary.histogram
    labels = [f"{b.lower:g}-{b.upper:g}" for b in bands]
    assert all(label in text for label in labels)
    assert [b.count for b in bands] == [0, 0, 2, 0, 1, 0, 1, 0, 1, 1]  # 20, 20, 40, 60, 80, 100 %
    axis = text[text.index(labels[-1]) + len(labels[-1]):].split("submissions per score band")[0].split()
    assert axis == ["0", "1", "2"]  # the value axis ends at the largest count


def test_the_distractor_shares_and_the_flags_match_the_choices() -> None:
    report = content()
    text = pdf_text(build_pdf(report)).replace("\n", " ")
    assert "Stroma 17% | *Thylakoid membranes 83% | Cell wall 0% |" in text
    assert "Nitrogen 17% | *Oxygen 67% |" in text and "blank 17%" in text
    flags = [(f.question_id, f.reason, f.detail) for f in report.flags]
    assert flags == [("q1", UNUSED_DISTRACTOR, "Cell wall"), ("q1", UNUSED_DISTRACTOR, "Nucleus"),
                     ("q2", UNUSED_DISTRACTOR, "Carbon dioxide"), ("q2", UNUSED_DISTRACTOR, "Hydrogen"),
                     ("q5", TOO_HARD, "difficulty 0.17")]
    flagged = text[text.index("Flagged items"):text.index("Students")]
    for question_id, reason, detail in flags:
        assert f"{question_id} {reason} {detail}" in flagged


def test_thresholds_and_negative_discrimination_flag_items() -> None:
    report = content(Thresholds(easy_above=0.8, hard_below=0.1)).report
    reasons = {(f.question_id, f.reason) for f in exam_flags(report, Thresholds(0.8, 0.1))}
    assert ("q1", TOO_EASY) in reasons and ("q5", TOO_HARD) not in reasons
    item = report.items[2].model_copy(update={"point_biserial": report.items[2].point_biserial.model_copy(
        update={"value": -0.3})})
    flipped = report.model_copy(update={"items": [item]})
    assert [(f.reason, f.detail) for f in exam_flags(flipped, Thresholds())] == [(NEGATIVE, "r -0.30")]


def test_the_student_table_names_each_student_best_first_with_their_points() -> None:
    text = pdf_text(build_pdf(content()))
    students = text[text.index("Students"):]
    order = [students.index(name) for name in
             ("Maria Santos", "Jose dela Cruz", "Ana Lim", "Juan Bautista", "Liza Soriano", "Ramon Cruz")]
    assert order == sorted(order)
    assert "5 / 5" in students and "100.0%" in students and "20.0%" in students


@pytest.mark.parametrize("title", ["Quiz <b>bold</b> & {{ 7*7 }}", "Pagsusulit sa Agham: ñ é"])
def test_titles_and_names_are_printed_as_text(title: str) -> None:
    text = pdf_text(build_pdf(content(exam={**EXAM, "title": title})))
    assert title in text
