"""Enqueue over HTTP (/api/v1/): bearer tokens, the validation and idempotency of send(), 422 with
every bad field, job status, the OpenAPI description, and the Node.js example, on a real server."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis
import requests
from click.testing import CliRunner
from werkzeug.serving import make_server

from gabay.actors import generate_questions, process_form_response
from gabay.broker import GabayBroker
from gabay.cli import main
from gabay.errors import ConfigError, InvalidInput
from gabay.feedback.submission import job_id_for
from gabay.jobs import JobStatus, JobStore
from gabay.queues import FORM_RESPONSE, RETRIEVAL
from gabay.settings import Settings, load_settings
from gabay.web.enqueue_api import token_digest
from tests.support.dashboard import PASSWORD, basic, make_app, with_password
from tests.support.feedback_samples import SUBMISSIONS, sample
from tests.support.feedback_workers import worker_env

TOKEN = "gbt_test-token-for-the-lms"
ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = sorted((ROOT / "examples" / "documents").glob("*.md"))[0]


class Served:
    """The dashboard's WSGI app on a real HTTP server on 127.0.0.1, in a thread."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def post(self, path: str, body: Any, token: str | None = TOKEN, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(self.url + path, json=body, headers=headers, timeout=10, **kwargs)

    def get(self, path: str, token: str | None = TOKEN) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(self.url + path, headers=headers, timeout=10)

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


def api_settings(settings: Settings) -> Settings:
    return with_password(settings).model_copy(update={"api_tokens": {"lms": token_digest(TOKEN)}})


@pytest.fixture
def served(settings: Settings, redis_client: redis.Redis, broker: GabayBroker) -> Iterator[Served]:
    server = Served(make_app(api_settings(settings), redis_client, broker))
    yield server
    server.stop()


def question_request(**extra: Any) -> dict[str, Any]:
    return {"document": {"id": DOCUMENT.stem, "title": DOCUMENT.stem, "text": DOCUMENT.read_text()},
            "count": 3, **extra}


def queued(broker: GabayBroker, queue: str) -> int:
    return int(broker.client.llen(broker.settings.keys.queue(queue)))


def test_without_a_valid_bearer_token_every_endpoint_but_the_description_is_refused(served: Served) -> None:
    for token in (None, "gbt_wrong", PASSWORD):
        answer = served.post("/api/v1/submissions", sample("mixed-score"), token=token)
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert served.get("/api/v1/jobs/anything", token=token).status_code == 401
    operators = requests.post(served.url + "/api/v1/submissions", json=sample("mixed-score"), timeout=10,
                              headers=basic("admin", PASSWORD))
    assert operators.status_code == 401  # the operators' login does not open the client API
    assert requests.get(served.url + "/api/status", headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=10).status_code == 401  # and a client token does not open the dashboard
    assert served.get("/api/v1/openapi.json", token=None).status_code == 200


def test_a_submission_is_accepted_once_and_a_repeat_answers_the_same_job(served: Served, broker: GabayBroker,
                                                                         redis_client: redis.Redis,
                                                                         settings: Settings) -> None:
    first = served.post("/api/v1/submissions", sample("mixed-score"))

    assert first.status_code == 202, first.text
    job_id = first.json()["job_id"]
    assert job_id == job_id_for("resp-0002")
    assert first.json()["status_url"] == first.headers["Location"] == f"/api/v1/jobs/{job_id}"
    assert JobStore(redis_client, settings).get(job_id).status is JobStatus.QUEUED
    again = served.post("/api/v1/submissions", sample("mixed-score"))
    assert again.status_code == 202 and again.json()["job_id"] == job_id
    assert process_form_response.send(sample("mixed-score")) == job_id  # what send() does, too
    other = {**sample("mixed-score"), "language": "fil"}
    conflict = served.post("/api/v1/submissions", other)
    assert conflict.status_code == 422 and "other content" in conflict.json()["error"]

    status = served.get(f"/api/v1/jobs/{job_id}")
    assert status.status_code == 200
    job = status.json()
    assert (job["id"], job["kind"], job["status"], job["cost_usd"]) == (job_id, "feedback", "queued", 0)
    missing = served.get("/api/v1/jobs/no-such-job")
    assert missing.status_code == 404 and "no-such-job" in missing.json()["error"]


def test_a_question_request_with_a_request_id_is_enqueued_once(served: Served, broker: GabayBroker) -> None:
    first = served.post("/api/v1/questions", question_request(request_id="lms-req-1"))
    again = served.post("/api/v1/questions", question_request(request_id="lms-req-1"))

    assert first.status_code == again.status_code == 202
    assert first.json()["job_id"] == again.json()["job_id"] == "lms-req-1"
    assert queued(broker, RETRIEVAL) == 1  # the repeat enqueued nothing, as send() does
    assert generate_questions.send(question_request(request_id="lms-req-1")) == "lms-req-1"
    assert queued(broker, RETRIEVAL) == 1


def test_a_bad_body_is_a_422_naming_every_bad_field_exactly_as_send_refuses_it(
        served: Served, broker: GabayBroker, redis_client: redis.Redis, settings: Settings) -> None:
    bad = sample("mixed-score")
    bad["student"]["email"] = "not an address"
    bad["form"]["title"] = ""
    bad["answers"][0]["max_points"] = -1
    bad["callback_url"] = "ftp://platform.example/hook"

    answer = served.post("/api/v1/submissions", bad)

    assert answer.status_code == 422
    fields = {problem["field"] for problem in answer.json()["fields"]}
    assert fields == {"student.email", "form.title", "answers.0.max_points", "callback_url"}
    assert all(problem["message"] for problem in answer.json()["fields"])
    with pytest.raises(InvalidInput) as refused:
        process_form_response.send(bad)
    assert answer.json()["error"] == str(refused.value)
    assert "not an address" not in answer.text  # values are never echoed
    questions = served.post("/api/v1/questions", question_request(count=500, difficulty="impossible"))
    assert questions.status_code == 422
    assert {p["field"] for p in questions.json()["fields"]} == {"count", "difficulty"}
    assert queued(broker, FORM_RESPONSE) == queued(broker, RETRIEVAL) == 0
    assert redis_client.keys(settings.keys.job("*")) == []


def test_what_is_not_a_json_object_is_refused_with_one_line(served: Served) -> None:
    not_json = requests.post(served.url + "/api/v1/submissions", data=b"{nope", timeout=10,
                             headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["error"] == "the body is not valid JSON"
    form = requests.post(served.url + "/api/v1/submissions", data={"a": "b"}, timeout=10,
                         headers={"Authorization": f"Bearer {TOKEN}"})
    assert form.status_code == 415
    array = served.post("/api/v1/submissions", [1, 2])
    assert array.status_code == 422 and array.json()["fields"] == [
        {"field": None, "message": "a submission must be a JSON object, not list"}]
    assert served.get("/api/v1/nothing-here").status_code == 404


def test_with_redis_down_the_status_is_a_503_in_one_line(settings: Settings, broker: GabayBroker) -> None:
    dead = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    server = Served(make_app(api_settings(settings), dead, broker))
    try:
        answer = server.get("/api/v1/jobs/any")
    finally:
        server.stop()
    assert answer.status_code == 503 and answer.json()["error"] == "Redis unavailable (ConnectionError)"


def test_the_openapi_description_is_3_1_and_its_schemas_are_the_contracts(served: Served) -> None:
    document = served.get("/api/v1/openapi.json", token=None).json()

    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {"/api/v1/questions", "/api/v1/submissions", "/api/v1/jobs/{job_id}"}
    assert document["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    schemas = document["components"]["schemas"]

    def validator(name: str) -> jsonschema.Draft202012Validator:
        return jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}", **document})

    for path in sorted(SUBMISSIONS.glob("*.json")):
        validator("Submission").validate(json.loads(path.read_text()))
    validator("QuestionRequest").validate(question_request(request_id="r-1"))
    assert not validator("Submission").is_valid({**sample("mixed-score"), "answers": []})
    assert not validator("QuestionRequest").is_valid(question_request(count="many"))
    assert {"QuestionJob", "FeedbackJob", "CallbackState", "ValidationProblem"} <= set(schemas)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH: the Node example is not run")
def test_the_node_fetch_example_enqueues_and_waits_for_the_job(served: Served, start_workers: Callable,
                                                               tmp_path: Path) -> None:
    start_workers(processes=1, threads=2, queues=(FORM_RESPONSE,), env=worker_env(tmp_path / "outbox"))
    env = {"GABAY_URL": served.url, "GABAY_TOKEN": TOKEN, "GABAY_WAIT_MS": "60000", "PATH": "/usr/bin:/bin"}
    env["PATH"] = str(Path(shutil.which("node") or "node").parent) + ":" + env["PATH"]

    run = subprocess.run(["node", "examples/http/enqueue.mjs", str(SUBMISSIONS / "perfect-score.json")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)

    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    job_id = json.loads((SUBMISSIONS / "perfect-score.json").read_text())["response_id"]
    assert lines[0] == f"job {job_id_for(job_id)}"
    assert json.loads(lines[-1]) == {"job_id": job_id_for(job_id), "status": "succeeded", "error": None}

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**sample("mixed-score"), "answers": []}))
    refused = subprocess.run(["node", "examples/http/enqueue.mjs", str(bad)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and refused.stderr.startswith("answers: ")


def test_api_token_create_prints_a_token_and_the_entry_that_admits_it(settings: Settings,
                                                                       redis_client: redis.Redis,
                                                                       broker: GabayBroker) -> None:
    result = CliRunner().invoke(main, ["api-token", "create", "reports"])

    assert result.exit_code == 0, result.output
    token = result.output.splitlines()[0].rpartition(": ")[2]
    entry = result.output.splitlines()[1].rpartition(": ")[2]
    assert token.startswith("gbt_") and token not in entry
    tokens = load_settings(api_tokens=f"lms:{token_digest(TOKEN)},{entry}").api_tokens
    server = Served(make_app(with_password(settings).model_copy(update={"api_tokens": tokens}),
                             redis_client, broker))
    try:
        assert server.get("/api/v1/jobs/none", token=token).status_code == 404  # admitted, no such job
        assert server.get("/api/v1/jobs/none", token=token + "x").status_code == 401
    finally:
        server.stop()
    refused = CliRunner().invoke(main, ["api-token", "create", "no spaces"])
    assert refused.exit_code == 2 and "letters, digits" in refused.output


def test_a_malformed_api_tokens_entry_stops_with_one_line_that_shows_no_value() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(api_tokens=f"lms:{token_digest(TOKEN)},ci:{TOKEN}")
    assert str(refused.value) == ("invalid configuration: API_TOKENS: entry 2 is not name:<64 hex digits "
                                  "of the token's SHA-256>")
    assert TOKEN not in str(refused.value)
