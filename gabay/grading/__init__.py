"""Grading exam submissions against a versioned answer key: item rules, LLM rubric grading, re-grading."""
