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


def _block(request: dict[str, Any], tag: str) -> dict[str, Any]:
    user = request["messages"][-1]["content"]
    match = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", user, re.DOTALL)
    return dict(json.loads(match.group(1))) if match else {}


def answers_of(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Question id -> question, student answer and answer key, from the prompt's data blocks."""
    merged: dict[str, dict[str, Any]] = {}
    for tag, key in (("form", "questions"), ("submission", "answers")):
        for item in _block(request, tag).get(key, []):
            known = {k: v for k, v in item.items() if v is not None}
            merged.setdefault(item["question_id"], {}).update(known)
    return merged


def feedback_responder(request: dict[str, Any]) -> dict[str, Any]:
    """Valid feedback in the language the system prompt asks for, one note per needs_note id.

    It writes as the rubric asks (:mod:`gabay.feedback.rubric`): a strength that names a right
    answer, notes that quote the student's answer and the key, an action to take.
    """
    system = request["messages"][0]["content"]
    tagalog = "Write every text in Tagalog" in system
    facts = facts_of(request)
    answers = answers_of(request)
    right = [q["question_id"] for q in facts["questions"] if q["outcome"] == "right"]
    strengths = (["Malinaw ang mga sagot."] if tagalog else ["Clear answers."]) + [
        ("Tama ang sagot mo sa: " if tagalog else "You answered correctly: ") + answers[qid]["question"]
        for qid in right[:1] if qid in answers]

    def note(qid: str) -> str:
        why = "Ang tamang sagot ay mas angkop dahil..." if tagalog else "The key answer fits because..."
        given, key = answers.get(qid, {}).get("student_answer"), answers.get(qid, {}).get("correct_answer")
        if not key:
            return why
        quoted = (f"Ang sagot mo ay \u201c{given}\u201d; ang tamang sagot ay \u201c{key}\u201d. " if tagalog
                  else f"You answered \u201c{given}\u201d; the correct answer is \u201c{key}\u201d. ")
        return quoted + why

    return {
        "summary": f"{TAGALOG_MARK}! Maayos ang iyong pagsisikap." if tagalog else "Good work overall.",
        "strengths": strengths,
        "notes": [{"question_id": qid, "note": note(qid)} for qid in facts["needs_note"]],
        "next_steps": ["Balikan ang aralin."] if tagalog else ["Review the lesson."],
    }
