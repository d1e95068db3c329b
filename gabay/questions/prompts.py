"""Prompts for drafting and validating questions with a language model, and parsing the answers.

Both prompts ask for a JSON object (DeepSeek supports only ``json_object`` mode, which needs the
word "json" in the prompt). The user message is itself JSON, so that the task is unambiguous.
"""

from __future__ import annotations

import json
from typing import Any

from gabay.questions.models import Draft, QuestionTask

DRAFT_SYSTEM = """You write exam questions for teachers from a source document.
Use only facts stated in the given passages. Write every question and answer in the requested
language. Each question cites the id of the passage it comes from and quotes, in "evidence", the
sentence of that passage that supports the answer.
Types: "multiple_choice" (exactly 4 distinct options, exactly one correct; "answer" is the correct
option's text), "true_false" ("answer" is "True" or "False"), "short_answer" (a short answer).
Do not repeat any question listed in "avoid".
Answer with a JSON object: {"questions": [{"type": "...", "question": "...", "options": ["..."],
"answer": "...", "passage_id": "p1", "evidence": "..."}]}"""

VALIDATE_SYSTEM = """You check exam questions against the passage each one cites.
A question is ok only if: its answer key is correct and supported by the passage; a multiple-choice
question has exactly one correct option; it is clear, answerable from the passage alone, written in
the requested language, and of its stated type.
Answer with a JSON object: {"verdicts": [{"id": "...", "ok": true, "reason": "..."}]}, one verdict
per question id; give the reason when ok is false."""


def draft_prompt(task: QuestionTask, wanted: int) -> str:
    per_type = {t: 0 for t in task.question_types}
    for i in range(wanted):
        per_type[task.question_types[i % len(task.question_types)]] += 1
    return json.dumps({
        "task": "draft_questions",
        "language": task.language,
        "difficulty": task.difficulty,
        "topic": task.topic,
        "document_title": task.title,
        "how_many": per_type,
        "avoid": [q.question for q in task.accepted],
        "passages": [p.model_dump() for p in task.passages],
    }, ensure_ascii=False)


def validate_prompt(task: QuestionTask, drafts: list[Draft]) -> str:
    items = []
    for draft in drafts:
        passage = task.passage(draft.passage_id)
        items.append({"id": draft.id, "type": draft.type, "question": draft.question,
                      "options": draft.options, "answer": draft.answer,
                      "passage": passage.text if passage else ""})
    return json.dumps({"task": "validate_questions", "language": task.language, "questions": items},
                      ensure_ascii=False)


def parse_drafts(data: dict[str, Any], task: QuestionTask) -> tuple[list[Draft], int]:
    """The well-formed drafts of an answer, numbered for this round, and how many were malformed."""
    raw = data.get("questions")
    if not isinstance(raw, list):
        return [], 1
    drafts: list[Draft] = []
    malformed = 0
    for item in raw:
        if not isinstance(item, dict):
            malformed += 1
            continue
        options = item.get("options") or []
        try:
            drafts.append(Draft(
                id=f"r{task.round}-d{len(drafts) + 1}", type=item.get("type"),
                question=str(item.get("question", "")).strip(),
                options=[str(o).strip() for o in options] if isinstance(options, list) else [],
                answer=str(item.get("answer", "")).strip(),
                passage_id=str(item.get("passage_id", "")), evidence=str(item.get("evidence", "")),
            ))
        except ValueError:
            malformed += 1
    return drafts, malformed


def parse_verdicts(data: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    """Draft id -> (ok, reason); drafts without a verdict are missing from the map."""
    verdicts: dict[str, tuple[bool, str]] = {}
    raw = data.get("verdicts")
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            verdicts[item["id"]] = (item.get("ok") is True, str(item.get("reason") or ""))
    return verdicts
