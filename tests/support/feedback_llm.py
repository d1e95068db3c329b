"""A feedback-writing responder for the fake LLM server: reads the prompt like a model would."""

from __future__ import annotations

import json
import re
from typing import Any

TAGALOG_MARK = "Magaling"


def facts_of(request: dict[str, Any]) -> dict[str, Any]:
    """The ``<facts>`` JSON of the user prompt of a chat request."""
    user = request["messages"][-1]["content"]
    match = re.search(r"<facts>\n(.*?)\n</facts>", user, re.DOTALL)
    assert match, "the prompt has no <facts> block"
    return dict(json.loads(match.group(1)))


def feedback_responder(request: dict[str, Any]) -> dict[str, Any]:
    """Valid feedback in the language the system prompt asks for, one note per needs_note id."""
    system = request["messages"][0]["content"]
    tagalog = "Write every text in Tagalog" in system
    note = "Ang tamang sagot ay mas angkop dahil..." if tagalog else "The key answer fits because..."
    return {
        "summary": f"{TAGALOG_MARK}! Maayos ang iyong pagsisikap." if tagalog else "Good work overall.",
        "strengths": ["Malinaw ang mga sagot."] if tagalog else ["Clear answers."],
        "notes": [{"question_id": qid, "note": note} for qid in facts_of(request)["needs_note"]],
        "next_steps": ["Balikan ang aralin."] if tagalog else ["Review the lesson."],
    }
