"""The analytics worker in real dramatiq processes: six graded submissions of one exam, one
debounced analysis, one stored report counting all six."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from gabay.actors import process_form_response
from gabay.cluster.stats import QueueStats
from gabay.jobs import JobStatus
from gabay.queues import ANALYTICS
from gabay.settings import Settings, load_settings
from gabay.store.records import StoredAnalytics
from gabay.store.results import ResultsStore
from gabay.store.schema import upgrade
from tests.support.exam_samples import FORM_ID, exam_submissions, expected_points
from tests.support.feedback_workers import wait_for_job, worker_env
from tests.support.polling import wait_for

SUBMISSIONS = 6


@pytest.mark.slow
def test_six_graded_submissions_make_one_analysis_counting_six(
        start_workers, tmp_path: Path, redis_client: redis.Redis, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    database = f"sqlite:///{tmp_path / 'results.sqlite3'}"
    results = ResultsStore.from_settings(load_settings(database_url=database))
    upgrade(results.engine)  # a configured database is migrated by `gabay db upgrade`, not workers
    env = {**worker_env(tmp_path / "outbox"), "DATABASE_URL": database,
           "ANALYTICS_DEBOUNCE_SECONDS": "3"}
    workers = start_workers(processes=1, threads=4, env=env)
    try:
        jobs = [process_form_response.send(data) for data in exam_submissions(SUBMISSIONS)]
        for job_id in jobs:
            wait_for_job(redis_client, settings, job_id, JobStatus.SUCCEEDED, timeout=30)

        def analysed() -> StoredAnalytics | None:
            stored = results.analytics(FORM_ID)
            return stored if stored is not None and stored.submissions == SUBMISSIONS else None

        stored = wait_for(analysed, timeout=20, message="the exam's analytics to count six grades")
        stats = QueueStats(redis_client, settings)
        wait_for(lambda: stats.counters(ANALYTICS).completed >= 1, timeout=10,
                 message="the analytics run to be counted")

        summary = stored.report["summary"]
        assert summary["count"] == SUBMISSIONS
        assert summary["mean"]["value"] == pytest.approx(sum(expected_points(SUBMISSIONS)) / SUBMISSIONS)
        assert [i["question_id"] for i in stored.report["items"]] == ["q1", "q2", "q3", "q4", "q5"]
        # One run: counted once, nothing else waiting or delayed, and the debounce key is gone.
        assert stats.counters(ANALYTICS).completed == 1
        keys = settings.keys
        assert redis_client.llen(keys.queue(ANALYTICS)) == 0
        assert redis_client.zcard(keys.due(ANALYTICS)) == 0
        assert not redis_client.exists(keys.analytics_pending(FORM_ID))
        assert workers.log().count(f"Exam {FORM_ID} analysed") == 1
    finally:
        results.dispose()
