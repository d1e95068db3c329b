"""A finished question request as the results store keeps it: the questions and their verdicts.

Each accepted question carries the verdict that let it through (which validator, which checks);
each rejected draft its reason. The concluded result is kept on the job record
(``details.unstored_result``) until the store has it, so a retry after a store failure writes it
without validating again.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from gabay.jobs import JobRecord
from gabay.questions.models import Question, QuestionResult, QuestionTask
from gabay.store.records import QuestionFacts

#: The job record's detail holding a concluded result the store does not have yet.
UNSTORED = "unstored_result"
CHECKS = ["structure", "duplicates", "item-writing flaws", "blind round trip",
          "answer supported by its passage"]


def validator_of(record: JobRecord) -> str:
    """``provider:model`` of the last successful validation call (``offline`` without one)."""
    calls = [c for c in record.calls if c.stage.startswith("validation") and c.ok]
    return f"{calls[-1].provider}:{calls[-1].model}" if calls else "offline"


def question_facts(task: QuestionTask, result: QuestionResult, record: JobRecord) -> QuestionFacts:
    verdict = {"ok": True, "by": validator_of(record), "checks": CHECKS}
    return QuestionFacts(
        request_id=task.job_id, document_id=task.document_id, count=task.count, job_id=task.job_id,
        accepted=[{"question": q.model_dump(mode="json"), "verdict": {**verdict, **scores_of(q)}}
                  for q in result.questions],
        rejected=[r.model_dump(mode="json") for r in task.rejected],
        shortfall=result.shortfall,
    )


def scores_of(question: Question) -> dict[str, Any]:
    """The question's scores as its verdict shows them: flaws found, round-trip agreement, level."""
    quality = question.quality
    trip = quality.round_trip if quality else None
    return {"flaws": quality.flaws if quality else [], "level": question.bloom_level,
            "round_trip": trip.model_dump(mode="json") if trip else None}


def keep(result: QuestionResult, facts: QuestionFacts) -> dict[str, Any]:
    """What the job record keeps under :data:`UNSTORED`."""
    return {"result": result.model_dump(mode="json"), "facts": asdict(facts)}


def kept(details: dict[str, Any]) -> tuple[QuestionResult, QuestionFacts] | None:
    """The concluded result an earlier attempt kept, if any."""
    data = details.get(UNSTORED)
    if not isinstance(data, dict):
        return None
    return QuestionResult.model_validate(data["result"]), QuestionFacts(**data["facts"])
