"""What operator pages may show of a job record: ids and figures, nothing that names a student.

A feedback job's record keeps the recipient's address and the email's subject (the teacher's
reports label students with them), and the feedback text may greet the student by name. Operator
pages and the JSON API show the recipient as its pseudonymous id (``st-...``, the one
``gabay data forget`` takes), leave the texts out and mask anything shaped like an address in
error messages.
"""

from __future__ import annotations

import re
from typing import Any

from gabay.store.identity import person_id

EMAIL_LIKE = re.compile(r"[^\s@<>()\"',;:]+@[^\s@<>()\"',;:]+")
#: Fields of a result or of the details whose text may hold a name.
TEXT_FIELDS = {"subject", "feedback", "summary", "body", "html", "text"}
HIDDEN = "[not shown: may name the student]"


def mask_addresses(text: str) -> str:
    return EMAIL_LIKE.sub("[address]", text)


def operator_record(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of a plain job record (``view.plain``) fit for an operator page."""
    shown = dict(record)
    result = shown.get("result")
    if isinstance(result, dict):
        shown["result"] = _private(result)
        if isinstance(result.get("to"), str):
            shown["result"]["to"] = person_id(result["to"])
    if isinstance(shown.get("details"), dict):
        shown["details"] = _private(shown["details"])
    return _masked(shown)


def _private(values: dict[str, Any]) -> dict[str, Any]:
    return {key: HIDDEN if key in TEXT_FIELDS and value else value for key, value in values.items()}


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_addresses(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value
