"""The dashboard's JSON API, /metrics and /healthz, on the real Redis (werkzeug's test client)."""

from __future__ import annotations

import dramatiq
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from werkzeug.test import Client

from gabay.broker import GabayBroker
from gabay.jobs import JobStore, LLMCall
from gabay.queues import ALL_QUEUES
from gabay.settings import Settings
from tests.support.dashboard import PASSWORD, make_app, with_password

AUTH = ("admin", PASSWORD)


@pytest.fixture
def client(settings: Settings, redis_client: redis.Redis, broker: GabayBroker) -> Client:
    return Client(make_app(with_password(settings), redis_client, broker))


def enqueue(broker: GabayBroker, queue: str, count: int, delay: int | None = None) -> None:
    """Raw messages on ``queue`` (no worker runs in these tests, so they stay where they are)."""
    for index in range(count):
        message = dramatiq.Message(queue_name=queue, actor_name="probe", args=(f"t{index}",),
                                   kwargs={}, options={})
        broker.enqueue(message, delay=delay)


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_status_keeps_the_seed_shape_with_a_per_queue_breakdown(client: Client, broker: GabayBroker) -> None:
    enqueue(broker, "generation", 3)
    enqueue(broker, "form-response-processing", 2, delay=60_000)

    answer = client.get("/api/status", auth=AUTH)

    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    status = answer.json
    assert {"healthy", "reasons", "workers", "queues", "form_response_worker", "restart_attempts",
            "uptime", "per_queue"} <= set(status)
    assert set(status["workers"]) >= {"is_running", "worker_count", "concurrency"}
    assert set(status["queues"]) >= {"active", "waiting", "completed", "failed"}
    assert status["queues"]["waiting"] == 3
    assert status["per_queue"]["generation"]["waiting"] == 3
    assert status["per_queue"]["form-response-processing"]["delayed"] == 2
    assert status["healthy"] is False  # work waits and no worker consumes it
    assert any("generation" in reason for reason in status["reasons"])


def test_queues_lists_every_queue_with_its_counts_and_worker_type(client: Client,
                                                                  broker: GabayBroker) -> None:
    enqueue(broker, "validation", 4)

    answer = client.get("/api/queues", auth=AUTH)

    assert answer.status_code == 200
    rows = {row["name"]: row for row in answer.json["queues"]}
    assert set(rows) == set(ALL_QUEUES)
    assert rows["validation"]["waiting"] == 4
    assert rows["validation"]["worker_type"] == "question generation"
    assert rows["form-response-processing"]["worker_type"] == "form response"
    for row in rows.values():
        assert {"waiting", "delayed", "running", "dead_lettered", "paused", "completed", "failed"} <= set(row)


def test_a_job_is_read_by_id_and_an_unknown_one_is_a_json_404(client: Client, redis_client: redis.Redis,
                                                               settings: Settings) -> None:
    job = JobStore(redis_client, settings).create("questions", document_id="doc-1")

    found = client.get(f"/api/jobs/{job.id}", auth=AUTH)
    missing = client.get("/api/jobs/no-such-job", auth=AUTH)

    assert found.status_code == 200
    assert found.json["id"] == job.id
    assert found.json["details"] == {"document_id": "doc-1"}
    assert missing.status_code == 404
    assert missing.mimetype == "application/json"
    assert missing.json["status"] == 404
    assert "no-such-job" in missing.json["error"]


def test_recent_jobs_and_llm_usage(client: Client, redis_client: redis.Redis, settings: Settings) -> None:
    store = JobStore(redis_client, settings)
    job = store.create("feedback")
    store.add_call(job.id, LLMCall(stage="feedback", provider="openai", model="gpt-4o-mini",
                                   prompt_tokens=1200, completion_tokens=300, cost_usd=0.00036))

    jobs = client.get("/api/jobs?limit=5", auth=AUTH).json["jobs"]
    usage = client.get("/api/llm", auth=AUTH).json["usage"]

    assert [j["id"] for j in jobs] == [job.id]
    assert jobs[0]["tokens"] == 1500
    assert usage == [{"provider": "openai", "model": "gpt-4o-mini", "calls": 1, "prompt_tokens": 1200,
                      "completion_tokens": 300, "cost_usd": 0.00036}]


def test_workers_throughput_and_failures_answer_with_json(client: Client) -> None:
    assert client.get("/api/workers", auth=AUTH).json == {"workers": []}
    assert client.get("/api/failures", auth=AUTH).json == {"failures": []}
    throughput = client.get("/api/queues/generation/throughput?minutes=5", auth=AUTH).json
    assert throughput["queue"] == "generation"
    assert len(throughput["points"]) == 5
    assert all(p["completed"] == 0 and p["failed"] == 0 for p in throughput["points"])


def test_errors_are_json_with_proper_status_codes(client: Client) -> None:
    unknown_endpoint = client.get("/api/nothing", auth=AUTH)
    unknown_queue = client.get("/api/queues/nope/throughput", auth=AUTH)
    wrong_method = client.get("/api/restart", auth=AUTH)

    assert (unknown_endpoint.status_code, unknown_endpoint.json["status"]) == (404, 404)
    assert unknown_queue.status_code == 404
    assert "nope" in unknown_queue.json["error"]
    assert wrong_method.status_code == 405
    assert wrong_method.mimetype == "application/json"


def test_the_api_index_documents_every_endpoint(client: Client) -> None:
    endpoints = client.get("/api", auth=AUTH).json["endpoints"]
    assert "GET /api/jobs/<id>" in endpoints
    assert "POST /api/queues/<name>/pause" in endpoints


def test_metrics_are_valid_prometheus_text_with_cluster_counts(client: Client, broker: GabayBroker,
                                                               redis_client: redis.Redis,
                                                               settings: Settings) -> None:
    enqueue(broker, "retrieval", 2)
    enqueue(broker, "retrieval", 1, delay=60_000)
    store = JobStore(redis_client, settings)
    job = store.create("questions")
    store.add_call(job.id, LLMCall(stage="generation", provider="deepseek", model="deepseek-flash",
                                   prompt_tokens=100, completion_tokens=40, cost_usd=0.25))
    store.add_call(job.id, LLMCall(stage="generation", provider="deepseek", model="deepseek-flash",
                                   prompt_tokens=10, completion_tokens=5, cost_usd=0.5))

    answer = client.get("/metrics", auth=AUTH)

    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = metric_samples(answer.get_data(as_text=True))
    assert samples[("gabay_queue_waiting", (("queue", "retrieval"),))] == 2
    assert samples[("gabay_queue_delayed", (("queue", "retrieval"),))] == 1
    assert samples[("gabay_queue_paused", (("queue", "retrieval"),))] == 0
    for queue in ALL_QUEUES:
        for name in ("gabay_queue_running", "gabay_queue_dead_lettered",
                     "gabay_messages_completed_total", "gabay_messages_failed_total"):
            assert (name, (("queue", queue),)) in samples
    assert samples[("gabay_workers", ())] == 0
    assert samples[("gabay_restarts_total", ())] == 0
    deepseek = (("model", "deepseek-flash"), ("provider", "deepseek"))
    assert samples[("gabay_llm_calls_total", deepseek)] == 2
    assert samples[("gabay_llm_tokens_total", (("kind", "prompt"), *deepseek))] == 110
    assert samples[("gabay_llm_tokens_total", (("kind", "completion"), *deepseek))] == 45
    assert samples[("gabay_llm_cost_usd_total", deepseek)] == pytest.approx(0.75)


def test_healthz_needs_no_credentials_and_says_only_healthy_and_reasons(client: Client,
                                                                        broker: GabayBroker) -> None:
    healthy = client.get("/healthz")
    assert healthy.status_code == 200
    assert healthy.json == {"healthy": True, "reasons": []}

    enqueue(broker, "form-response-processing", 1)
    unhealthy = client.get("/healthz")

    assert unhealthy.status_code == 503
    assert set(unhealthy.json) == {"healthy", "reasons"}
    assert unhealthy.json["healthy"] is False
    assert "form-response-processing" in unhealthy.json["reasons"][0]


def test_healthz_answers_503_when_redis_is_down(settings: Settings, broker: GabayBroker) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    app = make_app(with_password(settings), dead, broker)

    answer = Client(app).get("/healthz")

    assert answer.status_code == 503
    assert answer.json["healthy"] is False
    assert "Redis" in answer.json["reasons"][0]


def test_the_page_shows_the_queues_and_the_dramatiq_dashboard_knows_them(client: Client,
                                                                        broker: GabayBroker) -> None:
    enqueue(broker, "generation", 7)

    page = client.get("/", auth=AUTH).get_data(as_text=True)
    messages = client.get("/dramatiq/", auth=AUTH)
    bare = client.get("/dramatiq", auth=AUTH)

    assert 'id="queue-generation"' in page
    assert '<td class="num waiting">7</td>' in page
    assert "Authentication is off" not in page
    assert messages.status_code == 200
    for queue in ALL_QUEUES:
        assert f'href="/dramatiq/queues/{queue}"' in messages.get_data(as_text=True)
    assert bare.status_code in (301, 302, 308)
    assert bare.headers["Location"].endswith("/dramatiq/")


SECRETS = {
    "openai_api_key": "sk-test-openai-SECRET-1",
    "deepseek_api_key": "sk-test-deepseek-SECRET-2",
    "brevo_api_key": "xkeysib-SECRET-3",
    "redis_password": "redis-SECRET-4",
    "callback_secret": "callback-SECRET-5",
}


def test_no_secret_appears_in_any_page_or_answer(settings: Settings, redis_client: redis.Redis,
                                                 broker: GabayBroker) -> None:
    loaded = with_password(settings).model_copy(
        update={name: SecretStr(value) for name, value in SECRETS.items()})
    client = Client(make_app(loaded, redis_client, broker))
    enqueue(broker, "generation", 1)
    job = JobStore(redis_client, loaded).create("questions")
    redis_url = loaded.redis_url.get_secret_value() if loaded.redis_url else "redis://"
    paths = ["/", "/live", "/api", "/api/status", "/api/queues", "/api/workers", "/api/jobs",
             f"/api/jobs/{job.id}", "/api/failures", "/api/llm", "/api/csrf", "/metrics", "/healthz",
             "/dramatiq/", "/dramatiq/queues/generation", "/api/nothing"]

    for path in paths:
        answer = client.get(path, auth=AUTH)
        body = answer.get_data(as_text=True) + str(answer.headers)
        assert answer.status_code != 500, path
        for secret in [*SECRETS.values(), PASSWORD, redis_url]:
            assert secret not in body, f"{path} shows a secret"


def test_behind_a_reverse_proxy_under_a_path_every_link_keeps_the_prefix(
        settings: Settings, redis_client: redis.Redis, broker: GabayBroker) -> None:
    from gabay.web import create_app
    from gabay.web.sources import build_sources

    app = create_app(build_sources(with_password(settings), redis_client), broker, url_prefix="/gabay")
    client = Client(app)
    base = "http://localhost/gabay/"  # the proxy's path becomes SCRIPT_NAME, as waitress's url_prefix does

    page = client.get("/", base_url=base, auth=AUTH).get_data(as_text=True)
    messages = client.get("/dramatiq/", base_url=base, auth=AUTH).get_data(as_text=True)

    assert 'href="/gabay/static/dashboard.css"' in page
    assert 'data-root="/gabay"' in page
    assert 'href="/gabay/dramatiq/queues/generation"' in messages
    assert client.get("/static/dashboard.js", base_url=base, auth=AUTH).status_code == 200


def test_the_scheduled_jobs_with_their_next_runs_and_the_leader(
        settings: Settings, redis_client: redis.Redis, broker: GabayBroker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    schedules = tmp_path / "schedules.toml"
    schedules.write_text('[schedules.nightly-report]\ncron = "0 2 * * *"\nactor = "probe"\n')
    app = make_app(with_password(settings.model_copy(update={"schedules_file": schedules})),
                   redis_client, broker)

    answer = Client(app).get("/api/schedules", auth=AUTH)

    assert answer.status_code == 200
    (entry,) = answer.json["schedules"]
    assert entry["name"] == "nightly-report"
    assert len(entry["next_runs"]) == 3 and entry["next_runs"][0].endswith("+08:00")  # Manila
    assert answer.json["leader"] is None  # no worker runs in this test
