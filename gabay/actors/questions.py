"""Placeholder: the questions actors are being written."""
