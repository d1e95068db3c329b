"""Exam analytics checked against values computed by hand on fixed data (tests/support/analytics_data.py).

Every expected number below is worked out by hand in the comments from the 0/1 table of the data
set (``TABLE``): T = total score, p = proportion correct, R = rest score (T minus the item).
"""

from __future__ import annotations

import json
import math

import pytest

from gabay.analytics.matrix import group_size
from gabay.analytics.report import analyse_exam
from gabay.analytics.summary import histogram
from gabay.errors import InvalidInput
from gabay.feedback.submission import parse_submission
from gabay.grading.grader import grade_submission
from gabay.grading.key import key_from_submission, parse_answer_key
from tests.support import analytics_data as data
from tests.support.feedback_samples import SAMPLE_NAMES, sample


def approx(value: float) -> object:
    return pytest.approx(value, abs=1e-9)


@pytest.fixture(scope="module")
def report():
    return analyse_exam(data.key(), data.graded())


def test_the_raw_answers_grade_to_the_table(report) -> None:
    # Normalisation ("thylakoid  MEMBRANES", "rubisco."), Tagalog true/false ("Tama", "Mali"),
    # numbers within 430 +- 5 ("432", "4.3e2", "426"), blanks and non-numbers as 0.
    grades = {g.response_id: [i.points for i in g.items] for g in data.graded()}
    assert grades == {rid: [float(v) for v in row] for rid, row in data.TABLE.items()}


def test_exam_summary(report) -> None:
    summary = report.summary
    # T = 5, 4, 3, 2, 1, 1; n = 6; sum 16 -> mean 16/6 = 8/3.
    assert summary.count == 6 and summary.excluded_needs_review == 0 and summary.max_points == 5
    assert summary.mean.value == approx(8 / 3)
    # sorted 1, 1, 2, 3, 4, 5 -> median (2 + 3) / 2 = 2.5.
    assert summary.median.value == approx(2.5)
    # deviations 7/3, 4/3, 1/3, -2/3, -5/3, -5/3; squares (49 + 16 + 1 + 4 + 25 + 25)/9 = 120/9 = 40/3.
    # population variance 40/3 / 6 = 20/9 -> sd sqrt(20/9) = 1.490712
    # sample variance     40/3 / 5 = 8/3  -> sd sqrt(8/3)  = 1.632993
    assert summary.sd_population.value == approx(math.sqrt(20 / 9))
    assert summary.sd_sample.value == approx(math.sqrt(8 / 3))
    assert round(summary.sd_population.value, 6) == 1.490712
    assert round(summary.sd_sample.value, 6) == 1.632993
    # mean percent: 100 * (8/3) / 5 = 53.33
    assert summary.mean_percent.value == approx(160 / 3)


def test_histogram_bins(report) -> None:
    # percentages 100, 80, 60, 40, 20, 20: bins [20,30) 2, [40,50) 1, [60,70) 1, [80,90) 1, [90,100] 1.
    bins = report.summary.histogram
    assert [(b.lower, b.upper) for b in bins[:2]] == [(0, 10), (10, 20)] and bins[-1].upper == 100
    assert [b.count for b in bins] == [0, 0, 2, 0, 1, 0, 1, 0, 1, 1]
    # 29 of 100 points is in 20-30 although 29/100*100 = 28.999999999999996 in floats
    assert [b.count for b in histogram([29.0], 100.0)][2] == 1
    assert [b.count for b in histogram([0.0, 10.0], 10.0, bins=4)] == [1, 0, 0, 1]


def test_difficulty_is_the_proportion_correct(report) -> None:
    # p = column sums / 6: q1 5/6, q2 4/6, q3 3/6, q4 3/6, q5 1/6.
    assert [i.difficulty.value for i in report.items] == [approx(5 / 6), approx(4 / 6), approx(0.5),
                                                          approx(0.5), approx(1 / 6)]
    assert all(i.dichotomous for i in report.items)
    # q4 was left out by s5, q5 left blank by s3, q2 by s6: answered 5 of 6 graded
    assert [(i.graded, i.answered) for i in report.items] == [(6, 6), (6, 5), (6, 6), (6, 5), (6, 5)]


def test_point_biserial_against_the_rest_score(report) -> None:
    # q1: x = 1,1,1,1,0,1; R = 4,3,2,1,1,0; mean x 5/6, mean R 11/6.
    #     Sxy = (13+7+1-5+25-11)/36 = 30/36, Sxx = 30/36, Syy = (169+49+1+25+25+121)/36 = 390/36
    #     r = 30 / sqrt(30 * 390) = 1/sqrt(13) = 0.277350
    # q2: x = 1,1,1,0,1,0; R = 4,3,2,2,0,1; mean x 2/3, mean R 2; Sxy = 1, Sxx = 4/3, Syy = 10
    #     r = 1 / sqrt(40/3) = sqrt(3/40) = 0.273861
    # q3: x = 1,1,0,1,0,0; R = 4,3,3,1,1,1; mean R 13/6; Sxy = 3/2, Sxx = 3/2, Syy = 318/36 = 53/6
    #     r = 1.5 / sqrt(1.5 * 53/6) = 3/sqrt(53) = 0.412082
    # q4: x = 1,1,1,0,0,0; R = 4,3,2,2,1,1; mean R 13/6; Sxy = 5/2, Sxx = 3/2, Syy = 246/36 = 41/6
    #     r = 2.5 / sqrt(1.5 * 41/6) = 5/sqrt(41) = 0.780869
    # q5: x = 1,0,0,0,0,0; R = 4,4,3,2,1,1; mean x 1/6, mean R 2.5; Sxy = 5/6*1.5 + 1/6*1.5 = 1.5,
    #     Sxx = 5/6, Syy = 4*2.25 + 2*0.25 = 9.5; r = 1.5 / sqrt(5/6 * 9.5) = sqrt(27/95) = 0.533114
    expected = [1 / math.sqrt(13), math.sqrt(3 / 40), 3 / math.sqrt(53), 5 / math.sqrt(41),
                math.sqrt(27 / 95)]
    assert [i.point_biserial.value for i in report.items] == [approx(v) for v in expected]
    assert [round(i.point_biserial.value, 6) for i in report.items] == [0.27735, 0.273861, 0.412082,
                                                                        0.780869, 0.533114]


def test_upper_lower_27_percent_index(report) -> None:
    # group size round(0.27 * 6) = round(1.62) = 2: upper s1, s2 (T 5, 4); lower s5, s6 (T 1, 1).
    # D = p(upper) - p(lower): q1 1 - 1/2, q2 1 - 1/2, q3 1 - 0, q4 1 - 0, q5 1/2 - 0.
    assert report.group_size == 2
    assert [i.upper_lower.value for i in report.items] == [0.5, 0.5, 1.0, 1.0, 0.5]
    # half up, at least 1; none below 2 grades: 50 -> 13.5 -> 14
    assert [group_size(n) for n in (0, 1, 2, 3, 4, 10, 50, 100)] == [0, 0, 1, 1, 1, 3, 14, 27]


def test_distractor_analysis(report) -> None:
    q1, q2, q3 = (i.distractors for i in report.items[:3])
    # q1: Stroma chosen by s5, the key by the 5 others; upper group both right, lower s5 Stroma, s6 right
    assert [(o.option, o.correct, o.count, o.upper_share, o.lower_share) for o in q1.options] == [
        ("Stroma", False, 1, 0.0, 0.5), ("Thylakoid membranes", True, 5, 1.0, 0.5),
        ("Cell wall", False, 0, 0.0, 0.0), ("Nucleus", False, 0, 0.0, 0.0)]
    assert q1.options[0].share == approx(1 / 6) and q1.no_answer == 0
    # q2: Oxygen s1, s2, s3, s5 (4/6), Nitrogen s4 (1/6), no answer s6 (1/6)
    assert [(o.option, o.count) for o in q2.options] == [("Carbon dioxide", 0), ("Nitrogen", 1),
                                                         ("Oxygen", 4), ("Hydrogen", 0)]
    assert q2.respondents == 6 and q2.no_answer == 1 and q2.no_answer_share == approx(1 / 6)
    # q3: True s1, s2 ("Tama"), s4; False s3, s5 ("Mali"), s6
    assert [(o.option, o.correct, o.count, o.share) for o in q3.options] == [
        ("True", True, 3, 0.5), ("False", False, 3, 0.5)]
    assert report.items[3].distractors is None and report.items[4].distractors is None


def test_kr20_and_alpha_on_right_wrong_items(report) -> None:
    # KR-20 = k/(k-1) * (1 - sum pq / var_T), population variance 20/9.
    # pq: 5/6*1/6 = 5/36, 4/6*2/6 = 8/36, 9/36, 9/36, 5/36 -> sum 36/36 = 1.
    # KR-20 = 5/4 * (1 - 1 / (20/9)) = 5/4 * 11/20 = 55/80 = 0.6875; alpha (same variances) too.
    assert report.kr20.value == approx(0.6875)
    assert report.cronbach_alpha.value == approx(0.6875)


def test_partial_credit_items() -> None:
    result = analyse_exam(data.key(data.PARTIAL_KEY), data.graded(data.PARTIAL_KEY, data.PARTIAL_ANSWERS))
    grades = data.graded(data.PARTIAL_KEY, data.PARTIAL_ANSWERS)
    assert {g.response_id: [i.points for i in g.items] for g in grades} == {
        rid: [float(v) for v in row] for rid, row in data.PARTIAL_TABLE.items()}
    # T = 4, 2, 1, 1: mean 2, deviations 2, 0, -1, -1 -> SS 6, population variance 1.5.
    assert result.summary.mean.value == 2 and result.summary.sd_population.value == approx(math.sqrt(1.5))
    # difficulty of b = mean of 2/2, 1/2, 0/2, 1/2 = 0.5; a = 2/4, c = 2/4
    assert [i.difficulty.value for i in result.items] == [0.5, 0.5, 0.5]
    assert [i.dichotomous for i in result.items] == [True, False, True]
    # item variances (population): a 0.25, b (1 + 0 + 1 + 0)/4 = 0.5, c 0.25 -> sum 1
    # alpha = 3/2 * (1 - 1/1.5) = 0.5; KR-20 undefined: b has partial scores
    assert result.cronbach_alpha.value == approx(0.5)
    assert result.kr20.value is None and "item b has partial scores" in (result.kr20.reason or "")
    # b: x = 2,1,0,1; R = 2,1,1,0; dx 1,0,-1,0; dR 1,0,0,-1 -> r = 1 / sqrt(2 * 2) = 0.5
    # a: x = 1,1,0,0; R = 3,1,1,1 -> Sxy 1, Sxx 1, Syy 3 -> r = 1/sqrt(3);  c: R = 3,2,0,1 -> Sxy 0
    assert [i.point_biserial.value for i in result.items] == [approx(1 / math.sqrt(3)), approx(0.5),
                                                              approx(0.0)]
    # group size round(1.08) = 1: upper p1 (T 4), lower p4 (T 1, tie with p3 broken by id)
    # D: a 1 - 0 = 1; b 2/2 - 1/2 = 0.5; c 1 - 0 = 1
    assert [i.upper_lower.value for i in result.items] == [1.0, 0.5, 1.0]
    # multi-select shares: X by all 4, Y by p1 and p4, Z by p3 and p4, W by none
    b = result.items[1].distractors
    assert b is not None and [(o.option, o.count) for o in b.options] == [("X", 4), ("Y", 2), ("Z", 2),
                                                                           ("W", 0)]


def test_one_submission_gives_reasons_not_errors() -> None:
    result = analyse_exam(data.key(), data.graded()[:1])
    summary = result.summary
    assert summary.count == 1 and summary.mean.value == 5 and summary.median.value == 5
    assert summary.sd_population.value == 0.0
    assert summary.sd_sample.value is None and "at least 2" in (summary.sd_sample.reason or "")
    for item in result.items:
        assert item.difficulty.value == 1.0
        assert item.point_biserial.value is None and item.point_biserial.reason
        assert item.upper_lower.value is None and item.upper_lower.reason
    assert result.kr20.value is None and result.cronbach_alpha.reason == (
        "needs at least 2 complete submissions, has 1")


def test_zero_variance_gives_reasons_not_errors() -> None:
    answer_key = data.key()
    twins = [g.model_copy(update={"response_id": rid}) for rid, g in
             (("a", data.graded()[0]), ("b", data.graded()[0]))]
    result = analyse_exam(answer_key, twins)
    assert result.summary.sd_population.value == 0.0 and result.summary.sd_sample.value == 0.0
    assert result.cronbach_alpha.value is None
    assert result.cronbach_alpha.reason == "the total scores have zero variance"
    assert result.items[0].point_biserial.reason == "the item score has zero variance"
    assert result.items[0].upper_lower.value == 0.0


def test_no_submissions_at_all() -> None:
    result = analyse_exam(data.key(), [])
    assert result.summary.count == 0 and result.summary.mean.value is None
    assert result.summary.mean.reason == "no scores" and result.items[0].difficulty.value is None
    assert sum(b.count for b in result.summary.histogram) == 0


def test_samples_with_a_grade_in_review() -> None:
    # Key from with-open-question (q1-q5 multiple choice, q6 an essay worth 2). The four other
    # samples lack q6 (0 points, not answered); with-open-question waits for the teacher on q6.
    submissions = [parse_submission(sample(name)) for name in SAMPLE_NAMES]
    answer_key = key_from_submission(parse_submission(sample("with-open-question")))
    grades = [grade_submission(answer_key, s) for s in submissions]
    result = analyse_exam(answer_key, grades)
    summary = result.summary
    # complete: all-wrong 0, mixed 3, perfect 5, tagalog 3 -> mean 11/4 = 2.75, median 3
    # deviations -2.75, 0.25, 2.25, 0.25 -> SS 7.5625 + 0.0625 + 5.0625 + 0.0625 = 12.75
    # population sd sqrt(12.75/4) = 1.785357; sample sd sqrt(12.75/3) = 2.061553
    assert (summary.count, summary.excluded_needs_review, summary.max_points) == (4, 1, 7)
    assert summary.mean.value == 2.75 and summary.median.value == 3
    assert summary.sd_population.value == approx(math.sqrt(12.75 / 4))
    assert summary.sd_sample.value == approx(math.sqrt(12.75 / 3))
    # q6: graded in the 4 complete grades (all 0), in review in the fifth
    q6 = result.items[-1]
    assert (q6.graded, q6.answered, q6.difficulty.value) == (4, 0, 0.0)
    assert q6.point_biserial.reason == "the item score has zero variance"
    # q2 (gas): Oxygen chosen by mixed, perfect, with-open-question; Nitrogen all-wrong; CO2 tagalog
    q2 = result.items[1].distractors
    assert q2 is not None and [(o.option, o.count) for o in q2.options] == [
        ("Carbon dioxide", 1), ("Nitrogen", 1), ("Oxygen", 3), ("Hydrogen", 0)]
    text = json.dumps(result.model_dump(mode="json"))
    for name in SAMPLE_NAMES:  # ids and aggregates only: no student name or address
        student = sample(name)["student"]
        assert student["name"] not in text and student["email"] not in text


def test_grades_of_another_key_version_are_refused() -> None:
    newer = parse_answer_key({**data.KEY, "version": 2})
    with pytest.raises(InvalidInput, match="key version 1, not 'photosynthesis-check' version 2"):
        analyse_exam(newer, data.graded())


def test_only_the_latest_grade_of_a_response_counts() -> None:
    grades = data.graded()
    better = grades[5].model_copy(update={"version": 2, "points": 5.0, "items": grades[0].items})
    result = analyse_exam(data.key(), [*grades, better])
    # s6 now scores 5 (as s1): T = 5, 4, 3, 2, 1, 5 -> mean 20/6
    assert result.summary.count == 6 and result.summary.mean.value == approx(20 / 6)


def test_the_report_serialises_to_json(report) -> None:
    dumped = json.loads(json.dumps(report.model_dump(mode="json")))
    assert dumped["kr20"] == {"value": 0.6875, "reason": None}
    assert dumped["summary"]["sd_sample"]["value"] == pytest.approx(math.sqrt(8 / 3))
    assert set(dumped["items"][0]) >= {"question_id", "difficulty", "point_biserial", "upper_lower",
                                       "distractors"}
