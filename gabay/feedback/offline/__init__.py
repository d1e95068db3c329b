"""Feedback without a language model: kind, specific sentences built from the computed facts."""
