"""/metrics: histograms, event counters and queue ages, valid Prometheus text, 200 without Redis.

Workers publish the histograms in their buffered 0.25 s transaction (no Redis call per job); an
in-process Dramatiq worker on the real Redis broker runs the jobs measured here.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq import Worker
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import Client

from gabay.broker import GabayBroker
from gabay.cluster.stats import StatsWriter
from gabay.cluster.stats_buffer import StatsBuffer
from gabay.jobs import JobStore, LLMCall
from gabay.queues import SYSTEM
from gabay.settings import Settings
from tests.support.dashboard import PASSWORD, make_app, with_password
from tests.support.polling import wait_for

AUTH = ("admin", PASSWORD)
TEST_QUEUE = SYSTEM  # a queue /metrics lists (the probe's); nothing else runs there in tests
QUEUE_LABEL = (("queue", TEST_QUEUE),)


@dramatiq.actor(queue_name=TEST_QUEUE, max_retries=3, min_backoff=50, max_backoff=100)
def metrics_fails_once(token: str) -> None:
    """Fails on its first run, succeeds on the second (a retry)."""
    broker = dramatiq.get_broker()
    assert isinstance(broker, GabayBroker)
    if broker.client.incr(broker.settings.keys.test("fails-once", token)) == 1:
        raise RuntimeError("first run fails")


@dramatiq.actor(queue_name=TEST_QUEUE, max_retries=0)
def naps(seconds: float) -> None:
    time.sleep(seconds)


def scrape(settings: Settings, client: redis.Redis, broker: GabayBroker) -> str:
    answer = Client(make_app(with_password(settings), client, broker)).get("/metrics", auth=AUTH)
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample, checked by prometheus_client's own parser (it raises on invalid text)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def families(text: str) -> dict[str, str]:
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def test_observations_stay_in_memory_until_one_transaction_publishes_them(
        redis_client: redis.Redis, settings: Settings, broker: GabayBroker) -> None:
    buffer = StatsBuffer(StatsWriter(redis_client, settings), "worker-1", ttl_ms=3000)
    for seconds in (0.03, 0.2, 0.2, 7.0, 900.0):
        buffer.observe("job_duration_seconds", ("grading", "grade_form_response"), seconds)
    assert not redis_client.exists(settings.keys.histograms("job_duration_seconds"))  # no I/O yet

    assert buffer.flush()

    text = scrape(settings, redis_client, broker)
    assert families(text)["gabay_job_duration_seconds"] == "histogram"
    got = samples(text)
    labels = (("actor", "grade_form_response"), ("queue", "grading"))
    bucket = "gabay_job_duration_seconds_bucket"
    assert got[(bucket, (*labels[:1], ("le", "0.05"), *labels[1:]))] == 1
    assert got[(bucket, (*labels[:1], ("le", "0.25"), *labels[1:]))] == 3
    assert got[(bucket, (*labels[:1], ("le", "10.0"), *labels[1:]))] == 4
    assert got[(bucket, (*labels[:1], ("le", "600.0"), *labels[1:]))] == 4
    assert got[(bucket, (*labels[:1], ("le", "+Inf"), *labels[1:]))] == 5
    assert got[("gabay_job_duration_seconds_count", labels)] == 5
    assert got[("gabay_job_duration_seconds_sum", labels)] == pytest.approx(907.43)


def test_a_failed_publication_keeps_its_observations_for_the_next(
        redis_client: redis.Redis, settings: Settings) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    buffer = StatsBuffer(StatsWriter(dead, settings), "worker-2", ttl_ms=3000)
    buffer.observe("job_wait_seconds", ("grading", "grade_form_response"), 2.0)
    assert not buffer.flush()  # Redis unreachable: kept

    buffer._writer = StatsWriter(redis_client, settings)  # Redis is back
    assert buffer.flush()

    key = settings.keys.histograms("job_wait_seconds")
    assert redis_client.hget(key, "grading\tgrade_form_response\tcount") == b"1"
    assert float(redis_client.hget(key, "grading\tgrade_form_response\tsum") or 0) == 2.0


def test_jobs_run_by_a_worker_give_duration_wait_and_retry_figures(
        broker: GabayBroker, redis_client: redis.Redis, settings: Settings) -> None:
    worker = Worker(broker, queues={TEST_QUEUE}, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        metrics_fails_once.send("a")
        naps.send(0.3)
        key = settings.keys.histograms("job_duration_seconds")
        wait_for(lambda: int(redis_client.hget(key, f"{TEST_QUEUE}\tmetrics_fails_once\tcount") or 0) == 2
                 and redis_client.hget(key, f"{TEST_QUEUE}\tnaps\tcount") == b"1",
                 timeout=15, message="both jobs to be measured (metrics_fails_once twice)")
    finally:
        worker.stop(timeout=10_000)

    got = samples(scrape(settings, redis_client, broker))
    naps_labels = (("actor", "naps"), ("queue", TEST_QUEUE))
    assert got[("gabay_job_duration_seconds_count", naps_labels)] == 1
    assert 0.3 <= got[("gabay_job_duration_seconds_sum", naps_labels)] < 5
    assert got[("gabay_job_duration_seconds_bucket",
                (("actor", "naps"), ("le", "0.25"), ("queue", TEST_QUEUE)))] == 0
    # wait: from send to the first start only (the retry does not count again)
    wait_labels = (("actor", "metrics_fails_once"), ("queue", TEST_QUEUE))
    assert got[("gabay_job_wait_seconds_count", wait_labels)] == 1
    assert got[("gabay_messages_retried_total", QUEUE_LABEL)] == 1
    assert got[("gabay_messages_completed_total", QUEUE_LABEL)] == 2


def test_llm_latency_and_tokens_per_provider_and_model_with_cached_tokens(
        broker: GabayBroker, redis_client: redis.Redis, settings: Settings) -> None:
    store = JobStore(redis_client, settings)
    job = store.create("feedback")
    for ms, cached in ((800.0, 512), (3100.0, 0)):
        store.add_call(job.id, LLMCall(stage="feedback", provider="openai", model="gpt-4o-mini",
                                       prompt_tokens=900, cached_tokens=cached, completion_tokens=120,
                                       cost_usd=0.0003, duration_ms=ms))

    got = samples(scrape(settings, redis_client, broker))

    model = (("model", "gpt-4o-mini"), ("provider", "openai"))
    assert got[("gabay_llm_call_seconds_count", model)] == 2
    assert got[("gabay_llm_call_seconds_sum", model)] == pytest.approx(3.9)
    assert got[("gabay_llm_call_seconds_bucket", (("le", "1.0"), *model))] == 1
    assert got[("gabay_llm_call_seconds_bucket", (("le", "5.0"), *model))] == 2
    assert got[("gabay_llm_tokens_total", (("kind", "cached"), *model))] == 512
    assert got[("gabay_llm_tokens_total", (("kind", "prompt"), *model))] == 1800


def test_oldest_waiting_message_age_and_the_event_counters_per_queue(
        broker: GabayBroker, redis_client: redis.Redis, settings: Settings) -> None:
    now_ms = int(time.time() * 1000)
    for age_s in (5, 120, 30):
        broker.enqueue(dramatiq.Message(queue_name="analytics", actor_name="analyse_exam",
                                        args=("form-1",), kwargs={}, options={},
                                        message_timestamp=now_ms - age_s * 1000))
    counters = settings.keys.counters("generation")
    for name, value in (("deferred", 4), ("requeued", 2), ("cancelled", 3), ("failed", 1)):
        redis_client.hset(counters, name, value)

    got = samples(scrape(settings, redis_client, broker))

    age = got[("gabay_queue_oldest_message_age_seconds", (("queue", "analytics"),))]
    assert 120 <= age < 130
    assert got[("gabay_queue_oldest_message_age_seconds", (("queue", "grading"),))] == 0
    generation = (("queue", "generation"),)
    assert got[("gabay_messages_deferred_total", generation)] == 4
    assert got[("gabay_messages_requeued_total", generation)] == 2
    assert got[("gabay_messages_cancelled_total", generation)] == 3
    assert got[("gabay_messages_failed_total", generation)] == 1  # final failures: dead letters
    assert got[("gabay_messages_retried_total", generation)] == 0


def test_redis_down_still_answers_200_with_redis_up_0(settings: Settings, broker: GabayBroker) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)

    text = scrape(settings, dead, broker)

    got = samples(text)
    assert got[("gabay_redis_up", ())] == 0 and got[("gabay_up", ())] == 0


def test_promtool_accepts_the_exposition(broker: GabayBroker, redis_client: redis.Redis,
                                         settings: Settings, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    buffer = StatsBuffer(StatsWriter(redis_client, settings), "worker-3", ttl_ms=3000)
    buffer.observe("job_duration_seconds", ("grading", "grade_form_response"), 1.5)
    buffer.flush()
    JobStore(redis_client, settings).add_call(
        JobStore(redis_client, settings).create("feedback").id,
        LLMCall(stage="feedback", provider="openai", model="gpt-4o-mini", prompt_tokens=9,
                completion_tokens=3, cost_usd=0.0, duration_ms=10.0))

    checked = subprocess.run([promtool, "check", "metrics"], input=scrape(settings, redis_client, broker),
                             capture_output=True, text=True, timeout=30)

    assert checked.returncode == 0, checked.stdout + checked.stderr
