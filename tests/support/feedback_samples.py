"""The sample submissions of examples/submissions, and small builders of hostile variants."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

SUBMISSIONS = Path(__file__).resolve().parents[2] / "examples" / "submissions"
SAMPLE_NAMES = sorted(p.stem for p in SUBMISSIONS.glob("*.json"))

#: What code must compute for every sample: (earned, possible, pending points, recipient).
EXPECTED = {
    "perfect-score": (5, 5, 0, "maria.santos@student.example"),
    "mixed-score": (3, 5, 0, "jose.delacruz@student.example"),
    "all-wrong": (0, 5, 0, "ana.lim@student.example"),
    "tagalog": (3, 5, 0, "juan.bautista@student.example"),
    "with-open-question": (5, 5, 2, "liza.s@student.example"),
}

HOSTILE_TEXT = "<script>alert('x')</script><b>bold</b> {{ 7*7 }} {% if true %}yes{% endif %} &amp;"


def sample(name: str) -> dict[str, Any]:
    """A fresh copy of ``examples/submissions/<name>.json``."""
    return json.loads((SUBMISSIONS / f"{name}.json").read_text())


def without_points(name: str) -> dict[str, Any]:
    """A sample whose keyed answers lost their points: code must grade them."""
    data = sample(name)
    for answer in data["answers"]:
        if (answer.get("correct_answer") or "").strip():
            answer.pop("points", None)
    return data


def hostile(name: str = "mixed-score", response_id: str | None = None) -> dict[str, Any]:
    """A sample whose student name, title and answers hold HTML, script tags and Jinja syntax."""
    data = copy.deepcopy(sample(name))
    data["student"]["name"] = "<img src=x onerror=alert(1)> {{ config }} Eve"
    data["form"]["title"] = "Quiz {% raw %}<i>"
    for answer in data["answers"]:
        answer["answer"] = HOSTILE_TEXT
    if response_id:
        data["response_id"] = response_id
    return data
