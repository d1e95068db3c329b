"""Per-call checkpoints across processes: a worker SIGKILLed after a paid call costs nothing more."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from gabay.jobs import JobStatus, JobStore
from gabay.llm.job_calls import CHECKPOINTS
from gabay.questions.models import QuestionRequest, QuestionTask
from gabay.questions.retrieval import select_passages, split_passages
from gabay.settings import Settings
from tests.fakes import llm_server as fake
from tests.support.feedback_workers import wait_for_job
from tests.support.llm_actors import draft_then_die

pytestmark = pytest.mark.slow
KEY = "sk-test-key"
DOCUMENT = Path(__file__).resolve().parent.parent / "examples" / "documents" / "water-cycle.md"


def test_a_stage_recovered_from_a_killed_worker_does_not_pay_for_its_call_again(
        start_workers: Callable, redis_client: redis.Redis, settings: Settings) -> None:
    request = QuestionRequest.model_validate(
        {"document": {"id": "water", "title": "Water", "text": DOCUMENT.read_text()}, "count": 4})
    passages = select_passages(split_passages(request.document.text), None, request.count)
    task = QuestionTask.from_request("job-kill", request, passages)
    store = JobStore(redis_client, settings)
    store.create("questions", "job-kill")
    with fake.running("deepseek", api_key=KEY, responder=fake.exam_responder) as deepseek:
        env = {"DEEPSEEK_API_KEY": KEY, "DEEPSEEK_BASE_URL": deepseek.base_url, "LLM_TIMEOUT": "10"}
        modules = ("tests.support.actors", "tests.support.llm_actors")
        doomed = start_workers(processes=1, threads=1, modules=modules, env=env)
        draft_then_die.send(task.model_dump(mode="json"))

        doomed.wait(timeout=60)  # it SIGKILLed itself right after the stage's paid call
        assert len(deepseek.requests) == 1
        kept = store.get("job-kill")
        assert "generation" in kept.details[CHECKPOINTS] and kept.status is JobStatus.RUNNING
        start_workers(processes=1, threads=1, modules=modules, env=env)

        record = wait_for_job(redis_client, settings, "job-kill", JobStatus.SUCCEEDED, timeout=60)
    assert len(deepseek.requests) == 1  # the recovered run re-spent $0
    assert record.result is not None and record.result["drafts"] > 0
    paid = [c for c in record.calls if c.provider == "deepseek"]
    assert len(paid) == 1 and paid[0].cost_usd > 0  # the one paid call stays on the record, once
    assert record.cost_usd == paid[0].cost_usd
