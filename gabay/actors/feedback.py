"""Placeholder: the feedback actors are being written."""
