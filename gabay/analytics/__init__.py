"""Exam analytics from grades: score statistics, item difficulty, discrimination, distractors, reliability."""
