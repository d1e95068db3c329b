"""Gabay Workers: background AI work for education platforms on Dramatiq and Redis."""

__version__ = "0.1.0"
