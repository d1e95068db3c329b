"""Demo step: generate questions for the three sample documents at once and show the results."""

from __future__ import annotations

import time

from gabay.jobs import JobRecord
from gabay.ops.demo.context import Demo
from gabay.questions.models import ALL_TYPES

DEMO_TIMEOUT = 300.0
SHOWN_PER_DOCUMENT = 3


def demo_questions(demo: Demo) -> None:
    """Question generation from the sample documents (retrieval -> generation -> validation)."""
    # Imported when the step runs: importing gabay.actors reads the settings and builds the broker.
    from gabay.actors.questions import generate_questions, store

    documents = sorted((demo.examples / "documents").glob("*.md"))
    started = time.monotonic()
    jobs = {}
    for path in documents:
        request = {"document": {"id": path.stem, "title": path.stem, "text": path.read_text()},
                   "count": 5, "question_types": list(ALL_TYPES)}
        jobs[path.name] = generate_questions.send(request)
    demo.say(f"Enqueued {len(jobs)} documents: {', '.join(jobs)}")
    records = {name: store.wait(job_id, DEMO_TIMEOUT) for name, job_id in jobs.items()}
    demo.say(f"All done in {time.monotonic() - started:.1f} s\n")
    for name, record in records.items():
        _show(demo, name, record)


def _show(demo: Demo, name: str, record: JobRecord) -> None:
    timings = ", ".join(f"{stage} {(t.seconds or 0) * 1000:.0f} ms" for stage, t in record.stages.items())
    providers = sorted({f"{c.provider}/{c.model}" for c in record.calls if c.ok})
    demo.say(f"{name}: {record.status}; {timings}; {', '.join(providers)}; "
             f"{record.total_tokens} tokens, ${record.cost_usd:.6f}")
    if record.error:
        demo.say(f"  error: {record.error}")
    questions = (record.result or {}).get("questions", [])
    for item in questions[:SHOWN_PER_DOCUMENT]:
        demo.say(f"  [{item['type']}] {item['question']}")
        if item.get("options"):
            demo.say(f"      options: {' | '.join(item['options'])}")
        demo.say(f"      answer: {item['answer']}")
    if len(questions) > SHOWN_PER_DOCUMENT:
        demo.say(f"  ... and {len(questions) - SHOWN_PER_DOCUMENT} more (gabay job {record.id})")
    demo.say()
