"""Placeholder: the questions commands are being written."""

from gabay.cli import main  # noqa: F401
