"""Pseudonymous ids and versions: what the store keeps instead of names and addresses.

A student (or teacher) is stored as ``st-<hex>``, a digest of the normalised email address: the
same person gets the same id in every submission, and ``gabay data forget`` accepts either the
id or the address. It is a pseudonym, not anonymisation: whoever knows the address can compute
it, so the rows stay personal data (see the retention rules).
"""

from __future__ import annotations

import hashlib
import json

PERSON_PREFIX = "st-"


def person_id(email: str) -> str:
    """``st-`` + 24 hex digits of SHA-256 of the lower-cased, trimmed address."""
    digest = hashlib.sha256(("gabay-person:" + email.strip().lower()).encode()).hexdigest()
    return PERSON_PREFIX + digest[:24]


def as_person_id(student: str) -> str:
    """The id for ``gabay data forget --student``: an address is turned into its id."""
    return person_id(student) if "@" in student else student.strip()


def content_version(value: object) -> str:
    """A short digest of JSON-able ``value`` (an answer key), to tell its versions apart."""
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return "k-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
