"""Fixed exams for the analytics tests: 6 students x 5 right/wrong items, 4 x 3 with partial credit.

The answers are raw (as typed), so the tests grade them first: the 0/1 table below is what the
grading rules must make of them, and the expected statistics in tests/test_analytics.py are
computed by hand from it.

Main exam (``photosynthesis-check``), every item worth 1 point::

            q1 q2 q3 q4 q5 | total
      s1     1  1  1  1  1 |   5
      s2     1  1  1  1  0 |   4
      s3     1  1  0  1  0 |   3
      s4     1  0  1  0  0 |   2
      s5     0  1  0  0  0 |   1
      s6     1  0  0  0  0 |   1

Partial exam (``partial-check``): ``a`` multiple choice (1), ``b`` multi-select with partial credit
(2), ``c`` numeric with 1% relative tolerance (1)::

            a  b  c | total
      p1    1  2  1 |   4
      p2    1  1  0 |   2
      p3    0  0  1 |   1
      p4    0  1  0 |   1
"""

from __future__ import annotations

from typing import Any

from gabay.grading.grade import Grade
from gabay.grading.grader import grade_response
from gabay.grading.key import AnswerKey, parse_answer_key
from gabay.grading.response import Response

KEY: dict[str, Any] = {
    "exam_id": "photosynthesis-check",
    "version": 1,
    "items": [
        {"question_id": "q1", "type": "multiple_choice", "max_points": 1,
         "question": "Where do the light-dependent reactions take place?",
         "options": ["Stroma", "Thylakoid membranes", "Cell wall", "Nucleus"],
         "correct": "Thylakoid membranes"},
        {"question_id": "q2", "type": "multiple_choice", "max_points": 1,
         "question": "Which gas is released by photolysis?",
         "options": ["Carbon dioxide", "Nitrogen", "Oxygen", "Hydrogen"], "correct": "Oxygen"},
        {"question_id": "q3", "type": "true_false", "max_points": 1,
         "question": "Chlorophyll absorbs mostly red and blue light.", "correct": True},
        {"question_id": "q4", "type": "numeric", "max_points": 1,
         "question": "At which wavelength (nm) does chlorophyll a absorb most blue light?",
         "value": 430, "abs_tol": 5},
        {"question_id": "q5", "type": "short_answer", "max_points": 1,
         "question": "Which enzyme fixes carbon dioxide in the Calvin cycle?",
         "accepted": ["RuBisCO", "ribulose bisphosphate carboxylase"]},
    ],
}

#: Raw answers; None = the question was left out of the response entirely.
ANSWERS: dict[str, dict[str, Any]] = {
    "s1": {"q1": "Thylakoid membranes", "q2": "Oxygen", "q3": "True", "q4": "432", "q5": "rubisco."},
    "s2": {"q1": "thylakoid  MEMBRANES", "q2": "Oxygen", "q3": "Tama", "q4": "4.3e2", "q5": "Amylase"},
    "s3": {"q1": "Thylakoid membranes", "q2": "oxygen", "q3": "False", "q4": "426", "q5": ""},
    "s4": {"q1": "Thylakoid membranes", "q2": "Nitrogen", "q3": "true", "q4": "450", "q5": "ATP synthase"},
    "s5": {"q1": "Stroma", "q2": "Oxygen", "q3": "Mali", "q5": "Lipase"},
    "s6": {"q1": "Thylakoid membranes", "q2": None, "q3": "False", "q4": "abc", "q5": "RuBP"},
}

TABLE = {
    "s1": [1, 1, 1, 1, 1], "s2": [1, 1, 1, 1, 0], "s3": [1, 1, 0, 1, 0],
    "s4": [1, 0, 1, 0, 0], "s5": [0, 1, 0, 0, 0], "s6": [1, 0, 0, 0, 0],
}

PARTIAL_KEY: dict[str, Any] = {
    "exam_id": "partial-check",
    "version": 1,
    "items": [
        {"question_id": "a", "type": "multiple_choice", "max_points": 1, "options": ["A", "B", "C"],
         "correct": "A"},
        {"question_id": "b", "type": "multi_select", "max_points": 2, "options": ["X", "Y", "Z", "W"],
         "correct": ["X", "Y"], "scoring": "partial"},
        {"question_id": "c", "type": "numeric", "max_points": 1, "value": 9.81, "rel_tol": 0.01},
    ],
}

PARTIAL_ANSWERS: dict[str, dict[str, Any]] = {
    # b: (right chosen - wrong chosen) / 2 right options, floored at 0, times 2 points
    "p1": {"a": "A", "b": ["X", "Y"], "c": "9.8"},      # b (2-0)/2 -> 2 pts; |9.8-9.81| <= 0.0981
    "p2": {"a": "A", "b": "X", "c": "10"},              # b (1-0)/2 -> 1 pt;  |10-9.81| = 0.19 > 0.0981
    "p3": {"a": "B", "b": "X, Z", "c": "9,75"},         # b (1-1)/2 -> 0;     9,75 = 9.75, off by 0.06
    "p4": {"a": "C", "b": "X; Y; Z", "c": "9.7"},       # b (2-1)/2 -> 1 pt;  off by 0.11
}

PARTIAL_TABLE = {"p1": [1, 2, 1], "p2": [1, 1, 0], "p3": [0, 0, 1], "p4": [0, 1, 0]}


def key(data: dict[str, Any] = KEY) -> AnswerKey:
    return parse_answer_key(data)


def graded(data: dict[str, Any] = KEY, answers: dict[str, dict[str, Any]] = ANSWERS) -> list[Grade]:
    """Every student's answers graded under the key."""
    answer_key = parse_answer_key(data)
    return [grade_response(answer_key, Response(response_id=rid, exam_id=answer_key.exam_id,
                                                answers=given))
            for rid, given in answers.items()]
