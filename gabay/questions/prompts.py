"""Prompts for drafting and validating questions with a language model, and parsing the answers.

Both prompts ask for a JSON object (DeepSeek supports only ``json_object`` mode, which needs the
word "json" in the prompt). The user message is itself JSON, so that the task is unambiguous.

The order is what providers' prompt caches need: static, then the document, then the request.
Drafting and validation share one system message (:data:`QUESTIONS_SYSTEM`), and every user
message begins with the same bytes for one job: the document's title and its selected passages.
Only then come the task and the per-request fields (language, difficulty, topic, how many,
questions to avoid, the drafts to check). So the second generation round, and every validation,
re-read the instructions and passages from the provider's cache (DeepSeek bills a hit at 1/50 of
a miss, OpenAI caches prefixes from 1024 tokens). :func:`cache_key` is the stable
``prompt_cache_key`` of a document for OpenAI.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from gabay.questions.bloom import targets
from gabay.questions.models import Draft, QuestionTask

QUESTIONS_SYSTEM = """You write and check exam questions for teachers from a source document.
The user message is a JSON object: "document_title" and "passages" (each with an "id" and a
"text"), then "task", which is "draft_questions" or "validate_questions", and that task's fields.

Task "draft_questions": write new questions, as many of each type as "how_many" says.
Use only facts stated in the given passages. Write every question and answer in the requested
"language", at the requested "difficulty", about the "topic" when one is given. Each question
cites the id of the passage it comes from and quotes, in "evidence", the sentence of that passage
that supports the answer.
Types: "multiple_choice" (exactly 4 distinct options, exactly one correct; "answer" is the correct
option's text), "true_false" ("answer" is "True" or "False"), "short_answer" (a short answer).
Do not repeat any question listed in "avoid". When "bloom_levels" is given, write that many
questions at each level of Bloom's taxonomy, with a stem whose verb shows the level.
Answer with a JSON object: {"questions": [{"type": "...", "question": "...", "options": ["..."],
"answer": "...", "passage_id": "p1", "evidence": "..."}]}

Task "validate_questions": check each of "questions" against the passage it cites ("passage_id").
A question is ok only if: its answer key is correct and supported by the passage; a multiple-choice
question has exactly one correct option; it is clear, answerable from the passage alone, written in
the requested language, and of its stated type.
Answer with a JSON object: {"verdicts": [{"id": "...", "ok": true, "reason": "..."}]}, one verdict
per question id; give the reason when ok is false."""

#: Both stages use the shared system message, so that their prefixes are the same bytes.
DRAFT_SYSTEM = QUESTIONS_SYSTEM
VALIDATE_SYSTEM = QUESTIONS_SYSTEM


def cache_key(task: QuestionTask) -> str:
    """The ``prompt_cache_key`` of the task's document: the same for every round and stage."""
    return "gabay-doc-" + hashlib.sha256(task.document_id.encode()).hexdigest()[:24]


def _document(task: QuestionTask) -> dict[str, Any]:
    """The document part, first in every user message of the job (identical bytes)."""
    return {"document_title": task.title, "passages": [p.model_dump() for p in task.passages]}


def draft_prompt(task: QuestionTask, wanted: int) -> str:
    per_type = {t: 0 for t in task.question_types}
    for i in range(wanted):
        per_type[task.question_types[i % len(task.question_types)]] += 1
    return json.dumps({
        **_document(task),
        "task": "draft_questions",
        "language": task.language,
        "difficulty": task.difficulty,
        "topic": task.topic,
        "how_many": per_type,
        "avoid": [q.question for q in task.accepted],
        **({"bloom_levels": targets(task.bloom_mix, wanted)} if task.bloom_mix else {}),
    }, ensure_ascii=False)


def validate_prompt(task: QuestionTask, drafts: list[Draft]) -> str:
    items = [{"id": draft.id, "type": draft.type, "question": draft.question,
              "options": draft.options, "answer": draft.answer, "passage_id": draft.passage_id}
             for draft in drafts]
    return json.dumps({**_document(task), "task": "validate_questions", "language": task.language,
                       "questions": items}, ensure_ascii=False)


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


def check_drafts(data: dict[str, Any], task: QuestionTask) -> None:
    """Raise ValueError (the reason, sent back to the model in a re-ask) when the answer does not
    follow the schema: no "questions" list, or not one well-formed question in it."""
    if not isinstance(data.get("questions"), list):
        raise ValueError('the object must have a "questions" list')
    drafts, malformed = parse_drafts(data, task)
    if malformed and not drafts:
        raise ValueError(f'none of the {malformed} "questions" items has the fields and types '
                         'of the schema (type, question, options, answer, passage_id, evidence)')


def check_verdicts(data: dict[str, Any], drafts: list[Draft]) -> None:
    """Raise ValueError when the answer has no "verdicts" list or misses a question's verdict."""
    if not isinstance(data.get("verdicts"), list):
        raise ValueError('the object must have a "verdicts" list')
    missing = [d.id for d in drafts if d.id not in parse_verdicts(data)]
    if missing:
        raise ValueError("no verdict for question id(s) " + ", ".join(missing[:10]))
