"""A plain Dramatiq three-actor pipeline doing the same stage work and hand-offs as gabay's.

No gabay middleware, no job records: each stage stores its start and end times in one Redis hash
per job, so that bench_pipeline.py can compare hand-off latencies. Run by ``dramatiq``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.common import PLAIN_NAMESPACE
from gabay.questions.checks import pick_final, source_problem, structural_problem, to_question
from gabay.questions.models import QuestionTask, parse_request
from gabay.questions.offline.drafts import generate_drafts
from gabay.questions.retrieval import select_passages, split_passages

broker = RedisBroker(url=os.environ["BENCH_REDIS_URL"], namespace=PLAIN_NAMESPACE)
dramatiq.set_broker(broker)


def job_key(job_id: str) -> str:
    """The hash of one job's stage times (and result)."""
    return f"{PLAIN_NAMESPACE}:job:{job_id}"


def _mark(job_id: str, stage: str, edge: str) -> None:
    broker.client.hset(job_key(job_id), f"{stage}:{edge}", time.time())


@dramatiq.actor(queue_name="plain-retrieval", max_retries=0)
def plain_retrieve(request: dict[str, Any], job_id: str) -> None:
    _mark(job_id, "retrieval", "start")
    parsed = parse_request(request)
    passages = select_passages(split_passages(parsed.document.text), parsed.topic, parsed.count)
    task = QuestionTask.from_request(job_id, parsed, passages)
    _mark(job_id, "retrieval", "end")
    plain_draft.send(task.model_dump(mode="json"))


@dramatiq.actor(queue_name="plain-generation", max_retries=0)
def plain_draft(data: dict[str, Any]) -> None:
    task = QuestionTask.model_validate(data)
    _mark(task.job_id, "generation", "start")
    drafts = generate_drafts(task, task.drafts_wanted)
    _mark(task.job_id, "generation", "end")
    plain_validate.send(task.model_copy(update={"drafts": drafts}).model_dump(mode="json"))


@dramatiq.actor(queue_name="plain-validation", max_retries=0)
def plain_validate(data: dict[str, Any]) -> None:
    task = QuestionTask.model_validate(data)
    _mark(task.job_id, "validation", "start")
    good = [d for d in task.drafts if not structural_problem(d, task) and not source_problem(d, task)]
    questions = pick_final([to_question(d, task, i) for i, d in enumerate(good)], task.count,
                           task.question_types)
    broker.client.hset(job_key(task.job_id), "result", json.dumps(len(questions)))
    _mark(task.job_id, "validation", "end")
