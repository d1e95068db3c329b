"""The operator console over WSGI on the real Redis: pages of jobs, one job, CSRF, retry, cancel."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from werkzeug.test import Client

from gabay.broker import GabayBroker
from gabay.cluster.cancel_requests import CancelRequests
from gabay.jobs import JobRecord, JobStatus, JobStore, LLMCall, StageTiming
from gabay.questions.models import parse_request
from gabay.questions.stages import QuestionStages
from gabay.queues import FORM_RESPONSE
from gabay.settings import Settings
from gabay.web import create_app
from gabay.web.sources import build_sources
from tests.support.console_data import dead_letter, index_many
from tests.support.dashboard import PASSWORD, with_password

AUTH = ("admin", PASSWORD)
ORIGIN = "http://localhost"
STUDENT_EMAIL = "maria.santos@student.example"
STUDENT_NAME = "Maria Santos"


class Recording(redis.Redis):
    """The real client, remembering every command it sent (pipelines included)."""

    commands: list[tuple[Any, ...]]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(args)
        return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        queued = pipe.pipeline_execute_command
        commands = self.commands

        def record(*args: Any, **options: Any) -> Any:
            commands.append(args)
            return queued(*args, **options)

        pipe.pipeline_execute_command = record  # type: ignore[method-assign]
        return pipe


@pytest.fixture
def recording(redis_client: redis.Redis) -> Recording:
    client = Recording(connection_pool=redis_client.connection_pool)
    client.commands = []
    return client


@pytest.fixture
def web(settings: Settings, recording: Recording, broker: GabayBroker) -> Client:
    return Client(create_app(build_sources(with_password(settings), recording), broker))


def token_of(web: Client) -> str:
    html = web.get("/jobs", auth=AUTH).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "the jobs page carries a CSRF token"
    return match.group(1)


def post(web: Client, path: str, data: dict[str, Any], origin: str | None = ORIGIN) -> Any:
    headers = {"Origin": origin} if origin else {}
    return web.post(path, data=data, headers=headers, auth=AUTH)


def rows_of(html: str) -> list[str]:
    return re.findall(r'<td class="mono"><a href="/jobs/([^"]+)">', html)


def test_a_page_of_20000_jobs_is_one_bounded_range_read_and_pages_follow(
        web: Client, redis_client: redis.Redis, recording: Recording, settings: Settings) -> None:
    start = time.time() - 30_000
    ids = index_many(redis_client, settings, 20_000, start)
    recording.commands.clear()

    first = web.get("/jobs", auth=AUTH)

    assert first.status_code == 200
    html = first.get_data(as_text=True)
    assert rows_of(html) == ids[::-1][:50]  # newest first
    assert '<span id="total">20000</span>' in html
    names = [str(c[0]).upper() for c in recording.commands]
    assert "ZREVRANGEBYSCORE" in names
    ranges = [c for c in recording.commands if str(c[0]).upper() == "ZREVRANGEBYSCORE"]
    assert all("LIMIT" in [str(a).upper() for a in c] for c in ranges)  # never the whole set
    assert not {"SCAN", "KEYS", "ZRANGE", "SMEMBERS", "HGETALL"} & set(names)
    mget = [c for c in recording.commands if str(c[0]).upper() == "MGET"]
    assert len(mget) == 1 and len(mget[0]) == 51  # the page's 50 records, in one read

    next_url = re.search(r'href="([^"]+)" id="next"', html).group(1).replace("&amp;", "&")
    second = web.get(next_url, auth=AUTH).get_data(as_text=True)
    assert rows_of(second) == ids[::-1][50:100]


def test_filters_combine_kind_status_tenant_and_time_range(web: Client, redis_client: redis.Redis,
                                                          settings: Settings) -> None:
    start = float(int(time.time()) - 1000)  # whole seconds: the form's times are
    ids = index_many(redis_client, settings, 300, start)

    def shown(query: str) -> list[str]:
        answer = web.get("/jobs?" + query + "&size=200", auth=AUTH)
        assert answer.status_code == 200
        return rows_of(answer.get_data(as_text=True))

    expected = [i for n, i in enumerate(ids) if n % 2 == 1 and n % 3 == 1][::-1]
    assert shown("kind=questions&status=failed") == expected[:200]
    tenant = [i for n, i in enumerate(ids) if n % 5 == 0 and n % 3 == 0][::-1]
    assert shown("tenant=teacher-7&status=queued") == tenant
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + 100))
    until = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + 109))
    assert shown(f"since={since}&until={until}") == ids[100:110][::-1]
    assert shown("kind=nothing") == []


def test_the_jobs_pages_need_the_operators_login(web: Client) -> None:
    for path in ("/jobs", "/jobs/x"):
        assert web.get(path).status_code == 401
        assert web.get(path, auth=("admin", PASSWORD + "x")).status_code == 401
    assert web.post("/jobs/x/cancel", data={"confirm": "yes"}, headers={"Origin": ORIGIN}).status_code == 401


def test_searching_an_id_opens_its_page_and_an_unknown_id_says_so(web: Client, redis_client: redis.Redis,
                                                                 settings: Settings) -> None:
    job = JobStore(redis_client, settings).create("questions", "req-42", document_id="doc-9")

    found = web.get(f"/jobs?q={job.id}", auth=AUTH)
    missing = web.get("/jobs?q=no-such-job", auth=AUTH)

    assert found.status_code == 302 and found.headers["Location"].endswith(f"/jobs/{job.id}")
    assert missing.status_code == 200 and "No job no-such-job" in missing.get_data(as_text=True)
    assert web.get("/jobs/no-such-job", auth=AUTH).status_code == 404


def feedback_job(redis_client: redis.Redis, settings: Settings, job_id: str = "fb-1") -> JobRecord:
    """A succeeded feedback job whose record holds the student's name and address."""
    store = JobStore(redis_client, settings)
    store.create("feedback", job_id, response_id="resp-1")
    store.update(job_id, lambda r: r.stages.update(feedback=StageTiming(started_at=100.0, finished_at=102.5)))
    store.add_call(job_id, LLMCall(stage="feedback", provider="openai", model="gpt-4o-mini",
                                   prompt_tokens=900, cached_tokens=512, completion_tokens=120,
                                   cost_usd=0.000321, duration_ms=812.0))
    store.update(job_id, lambda r: r.details.update(
        feedback={"summary": f"Good work, {STUDENT_NAME}!"},
        stored={"table": "submissions", "key": "resp-1"}))
    return store.succeed(job_id, {"to": STUDENT_EMAIL, "subject": f"Your results, {STUDENT_NAME}",
                                  "via": "brevo", "message_id": "<msg-77@smtp-relay>",
                                  "outbox_path": None})


def test_the_job_page_shows_stages_calls_and_references_but_no_name_or_address(
        web: Client, redis_client: redis.Redis, settings: Settings) -> None:
    job = feedback_job(redis_client, settings)
    JobStore(redis_client, settings).update(job.id, lambda r: r.details.update(
        attempts=[{"at": 101.0, "queue": FORM_RESPONSE, "actor": "process_form_response", "retries": 0,
                   "error": f"EmailRetryable: Brevo 502 for {STUDENT_EMAIL}"}]))

    html = web.get(f"/jobs/{job.id}", auth=AUTH).get_data(as_text=True)

    assert 'id="job-status">succeeded<' in html
    assert "2.50" in html  # the feedback stage took 2.5 s
    assert "900" in html and "512" in html and "120" in html and "$0.000321" in html
    assert "&lt;msg-77@smtp-relay&gt;" in html and "submissions resp-1" in html
    assert "EmailRetryable: Brevo 502 for [address]" in html
    assert STUDENT_EMAIL not in html and STUDENT_NAME not in html and "Maria" not in html


def test_every_post_needs_the_sessions_token_and_this_origin(web: Client, redis_client: redis.Redis,
                                                            settings: Settings) -> None:
    JobStore(redis_client, settings).create("questions", "req-1")
    token = token_of(web)
    form = {"csrf_token": token, "confirm": "yes"}

    refused = [
        post(web, "/jobs/req-1/cancel", {"confirm": "yes"}),  # no token
        post(web, "/jobs/req-1/cancel", {**form, "csrf_token": "0" * 64}),  # a wrong token
        post(web, "/jobs/req-1/cancel", form, origin="https://evil.example"),  # another site
        post(web, "/jobs/req-1/cancel", form, origin=None),  # no Origin, no Referer
        post(web, "/jobs/bulk", {"action": "cancel", "ids": ["req-1"], "confirm": "yes"}),
    ]
    other = Client(web.application)  # another session: its own cookie, so the token is not its
    refused.append(other.post("/jobs/req-1/cancel", data=form, headers={"Origin": ORIGIN}, auth=AUTH))

    assert [r.status_code for r in refused] == [403] * 6
    assert all("CSRF" in r.get_data(as_text=True) or "cross-origin" in r.get_data(as_text=True)
               for r in refused)
    assert not CancelRequests(redis_client, settings.keys).is_requested("req-1")
    assert post(web, "/jobs/req-1/cancel", form).status_code == 200
    assert CancelRequests(redis_client, settings.keys).is_requested("req-1")


def test_cancel_asks_for_confirmation_first_and_refuses_a_finished_job(
        web: Client, redis_client: redis.Redis, settings: Settings) -> None:
    store = JobStore(redis_client, settings)
    store.create("questions", "req-1")
    feedback_job(redis_client, settings, "fb-done")
    token = token_of(web)
    requests = CancelRequests(redis_client, settings.keys)

    asked = post(web, "/jobs/req-1/cancel", {"csrf_token": token})
    assert asked.status_code == 200 and 'id="confirm-button"' in asked.get_data(as_text=True)
    assert not requests.is_requested("req-1")  # nothing done before the confirmation

    done = post(web, "/jobs/bulk", {"csrf_token": token, "action": "cancel", "confirm": "yes",
                                    "ids": ["req-1", "fb-done"]}).get_data(as_text=True)
    assert "1 of 2 done" in done
    assert "job fb-done not cancelled: it is succeeded already" in done
    assert requests.is_requested("req-1") and not requests.is_requested("fb-done")


def test_cancel_is_refused_once_the_email_send_has_started(web: Client, redis_client: redis.Redis,
                                                          settings: Settings) -> None:
    JobStore(redis_client, settings).create("feedback", "fb-2")
    redis_client.hset(settings.keys.sent("fb-2"), mapping={"state": "sending", "owner": "x"})

    done = post(web, "/jobs/fb-2/cancel", {"csrf_token": token_of(web), "confirm": "yes"})

    assert "its email send has started" in done.get_data(as_text=True)
    assert not CancelRequests(redis_client, settings.keys).is_requested("fb-2")


def test_retry_requeues_the_dead_letter_with_its_ids_and_reopens_the_job(
        web: Client, redis_client: redis.Redis, settings: Settings) -> None:
    redis_id = dead_letter(redis_client, settings, "fb-dead")
    keys = settings.keys
    page = web.get("/jobs/fb-dead", auth=AUTH).get_data(as_text=True)
    assert 'id="retry"' in page and "Dead-lettered on <strong>form-response-processing" in page

    done = post(web, "/jobs/fb-dead/retry", {"csrf_token": token_of(web), "confirm": "yes"})

    assert f"requeued on {FORM_RESPONSE} (message {redis_id})" in done.get_data(as_text=True)
    assert redis_client.lrange(keys.queue(FORM_RESPONSE), 0, -1) == [redis_id.encode()]
    requeued = json.loads(redis_client.hget(keys.messages(FORM_RESPONSE), redis_id))
    assert requeued["message_id"] == "fb-dead" and requeued["options"]["retries"] == 0
    assert "traceback" not in requeued["options"]
    assert redis_client.zcard(keys.dead_letters(FORM_RESPONSE)) == 0
    assert JobStore(redis_client, settings).get("fb-dead").status is JobStatus.QUEUED
    again = post(web, "/jobs/fb-dead/retry", {"csrf_token": token_of(web), "confirm": "yes"})
    assert "not retried: it is queued" in again.get_data(as_text=True)


def test_a_question_jobs_page_shows_each_accepted_questions_quality_scores(
        web: Client, redis_client: redis.Redis, settings: Settings) -> None:
    jobs = JobStore(redis_client, settings)
    jobs.create("questions", "lesson-scores")
    document = Path(__file__).resolve().parents[1] / "examples" / "documents" / "photosynthesis.md"
    request = parse_request({"request_id": "lesson-scores", "count": 3, "document": {
        "id": "photosynthesis", "title": "Photosynthesis", "text": document.read_text()}})
    stages = QuestionStages(jobs, settings, results=None)
    stages.succeed("lesson-scores", *stages.conclude(stages.validate(stages.draft(
        stages.retrieve("lesson-scores", request)))))

    html = web.get("/jobs/lesson-scores", auth=AUTH).get_data(as_text=True)

    assert html.count('<tr class="question">') == 3
    assert "agrees (offline)" in html and 'id="questions"' in html
    assert any(level in html for level in ("remember", "understand", "analyse"))
