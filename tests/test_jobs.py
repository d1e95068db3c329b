"""Job records: readable from any process, idempotent to create, costs summed cluster-wide."""

from __future__ import annotations

import pytest
import redis

from gabay import jobs
from gabay.cluster.stats import QueueStats
from gabay.errors import JobNotFound
from gabay.jobs import JobStatus, JobStore, LLMCall
from gabay.settings import Settings


@pytest.fixture
def store(redis_client: redis.Redis, settings: Settings) -> JobStore:
    return JobStore(redis_client, settings)


def test_a_job_goes_through_stages_to_a_result(store: JobStore) -> None:
    record = store.create("questions", "job-1", document_id="doc")
    assert record.status is JobStatus.QUEUED
    store.stage_started("job-1", "retrieval")
    store.stage_finished("job-1", "retrieval")
    store.add_call("job-1", LLMCall(stage="generation", provider="deepseek", model="deepseek-flash",
                                    prompt_tokens=100, completion_tokens=50, cost_usd=0.0001))
    store.succeed("job-1", {"questions": []})

    record = jobs.get("job-1", store)
    assert record.status is JobStatus.SUCCEEDED
    assert record.stages["retrieval"].seconds is not None
    assert record.total_tokens == 150
    assert record.cost_usd == pytest.approx(0.0001)
    assert record.details == {"document_id": "doc", "cached_share": {"generation": {"deepseek": 0.0}}}
    assert store.totals()["deepseek:deepseek-flash"]["prompt_tokens"] == 100


def test_creating_the_same_job_twice_keeps_the_first_record(store: JobStore) -> None:
    store.create("feedback", "resp-1")
    store.stage_started("resp-1", "feedback")
    again = store.create("feedback", "resp-1")
    assert again.status is JobStatus.RUNNING


def test_records_expire_and_unknown_ids_are_a_clear_error(store: JobStore,
                                                          redis_client: redis.Redis) -> None:
    store.create("questions", "job-2")
    assert 0 < redis_client.ttl(store.key("job-2")) <= store.settings.job_ttl
    with pytest.raises(JobNotFound, match="nope"):
        store.get("nope")


def test_finished_jobs_are_counted_once_per_kind(store: JobStore) -> None:
    stats = QueueStats(store.client, store.settings)
    store.create("questions", "q1")
    store.succeed("q1", {"questions": []})
    store.succeed("q1", {"questions": []})  # a second run of the last stage changes nothing
    store.create("questions", "q2")
    store.fail("q2", "InvalidInput: count 500")
    store.create("feedback", "f1")
    store.succeed("f1", {})
    assert stats.finished_jobs("questions") == (1, 1)
    assert stats.finished_jobs("feedback") == (1, 0)
    assert stats.finished_jobs("other") == (0, 0)


def test_recent_lists_newest_first(store: JobStore) -> None:
    for n in range(3):
        store.create("questions", f"j{n}")
    assert [r.id for r in store.recent()] == ["j2", "j1", "j0"]
