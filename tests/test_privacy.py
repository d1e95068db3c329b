"""No student name or email where operators look: queues, /dramatiq/, every page and API, logs.

Submissions travel as claim checks (gabay.cluster.claim_check): the message holds a reference,
the payload waits in Redis with a TTL. These tests send submissions with a name and an address
found nowhere else, run them through real worker processes (one retried, one dead-lettered, one
delayed, one waiting) and then read every operator page, API answer and worker log line.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from click.testing import CliRunner
from dramatiq import Worker
from werkzeug.routing import BuildError
from werkzeug.test import Client

from gabay.actors import grade_form_response, process_form_response
from gabay.broker import GabayBroker
from gabay.cli import main
from gabay.cluster.claim_check import CLAIM_OPTION, ClaimCheck
from gabay.cluster.stats import QueueStats
from gabay.errors import ClaimCheckFailed
from gabay.feedback.submission import job_id_for
from gabay.jobs import JobStatus, JobStore
from gabay.middleware.claim_check import ClaimChecks
from gabay.queues import FORM_RESPONSE, GRADING
from gabay.settings import Settings
from gabay.store.identity import person_id
from gabay.web.app import URLS
from tests.fakes import brevo_server
from tests.fakes.brevo_server import FakeBrevo
from tests.support.dashboard import PASSWORD, make_app, with_password
from tests.support.feedback_samples import sample
from tests.support.feedback_workers import dead_letters, wait_for_job, worker_env
from tests.support.polling import wait_for
from tests.support.unchecked import enqueue_unchecked

NAME = "Zelda Quintanilla-Varga"
EMAIL = "zelda.qv8471@student.example"
PERSONAL = (NAME, EMAIL, "Quintanilla", "zelda.qv8471")
AUTH = ("admin", PASSWORD)


def submission(response_id: str) -> dict[str, Any]:
    data = copy.deepcopy(sample("mixed-score"))
    data["response_id"] = response_id
    data["student"] = {"name": NAME, "email": EMAIL}
    return data


def assert_nothing_personal(text: str, where: str) -> None:
    for secret in PERSONAL:
        assert secret.lower() not in text.lower(), f"{secret!r} appears in {where}"


def read_value(client: redis.Redis, key: bytes) -> Any:
    kind = client.type(key).decode()
    if kind == "string":
        return client.get(key)
    if kind == "hash":
        return client.hgetall(key)
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "set":
        return client.smembers(key)
    return client.zrange(key, 0, -1) if kind == "zset" else b""


def every_value(client: redis.Redis, skip: set[str]) -> dict[str, str]:
    """Every key of the test database (but ``skip``) with its value as text."""
    found = {}
    for raw in client.scan_iter(count=500):
        key = raw.decode()
        if key in skip:
            continue
        found[key] = repr(read_value(client, raw))
    return found


def test_a_submission_message_holds_a_reference_and_its_payload_waits_apart(
        broker: GabayBroker, redis_client: redis.Redis, settings: Settings) -> None:
    process_form_response.send(submission("privacy-1"))

    (data,) = redis_client.hvals(settings.keys.messages(FORM_RESPONSE))
    message = json.loads(data)
    assert message["args"] == [] and message["kwargs"] == {}
    ref = message["options"][CLAIM_OPTION]
    claim = settings.keys.claim(ref)
    payload = json.loads(redis_client.get(claim) or b"{}")
    assert payload["args"][0]["student"] == {"name": NAME, "email": EMAIL}
    assert 0 < redis_client.ttl(claim) <= settings.claim_check_ttl
    assert settings.claim_check_ttl > broker.dead_message_ttl / 1000  # outlives a dead letter
    assert redis_client.smembers(settings.keys.claims_of(person_id(EMAIL))) == {ref.encode()}
    for key, value in every_value(redis_client, skip={claim}).items():
        assert_nothing_personal(value, f"Redis key {key}")


def test_a_payload_redis_refuses_fails_the_send_and_enqueues_nothing(
        broker: GabayBroker, redis_client: redis.Redis, settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    user = "gabay-test-read-only"
    redis_client.execute_command("ACL", "SETUSER", user, "reset", "on", ">pw", "%R~*", "+@all")
    read_only = redis.Redis(host="127.0.0.1", port=6379,
                            db=redis_client.connection_pool.connection_kwargs["db"],
                            username=user, password="pw")
    try:
        monkeypatch.setattr(broker, "claim_check", ClaimCheck(read_only, settings.keys, 60))
        with pytest.raises(ClaimCheckFailed, match=r"could not store the payload of a "
                           r"process_form_response message in Redis \(NoPermissionError\); "
                           r"nothing was enqueued"):
            process_form_response.send(submission("privacy-2"))
    finally:
        read_only.close()
        redis_client.execute_command("ACL", "DELUSER", user)

    assert redis_client.llen(settings.keys.queue(FORM_RESPONSE)) == 0
    assert redis_client.hlen(settings.keys.messages(FORM_RESPONSE)) == 0
    assert not list(redis_client.scan_iter(match=settings.keys.claim("*")))

    monkeypatch.undo()  # Redis takes it again: the same send now enqueues it, once
    process_form_response.send(submission("privacy-2"))
    assert redis_client.llen(settings.keys.queue(FORM_RESPONSE)) == 1


def test_a_payload_redis_cannot_read_sends_the_message_back_without_spending_a_retry(
        broker: GabayBroker, redis_client: redis.Redis, settings: Settings,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    job_id = process_form_response.send(submission("privacy-unreadable"))
    gate = next(m for m in broker.middleware if isinstance(m, ClaimChecks))
    user = "gabay-test-write-only"
    redis_client.execute_command("ACL", "SETUSER", user, "reset", "on", ">pw", "%W~*", "+@all")
    write_only = redis.Redis(host="127.0.0.1", port=6379,
                             db=redis_client.connection_pool.connection_kwargs["db"],
                             username=user, password="pw")
    worker = Worker(broker, queues={FORM_RESPONSE}, worker_threads=1, worker_timeout=100)
    try:
        monkeypatch.setattr(gate, "claims", ClaimCheck(write_only, settings.keys, 60))
        worker.start()
        wait_for(lambda: caplog.text.count("ClaimChecks could not decide") >= 2, timeout=10,
                 message="the gate to refuse twice")
        assert JobStore(redis_client, settings).get(job_id).status is JobStatus.QUEUED
        monkeypatch.undo()  # Redis answers again: it runs, as its first attempt
        wait_for_job(redis_client, settings, job_id, JobStatus.SUCCEEDED, timeout=15)
    finally:
        worker.stop(timeout=10_000)
        write_only.close()
        redis_client.execute_command("ACL", "DELUSER", user)
    assert "Retrying message" not in caplog.text
    assert not redis_client.exists(settings.keys.dead_messages(FORM_RESPONSE))
    assert not list(redis_client.scan_iter(match=settings.keys.claim("*")))  # deleted once sent


def operator_urls(app_client: Client, queues: list[str], job_ids: list[str], form_id: str) -> list[str]:
    """Every GET page and API answer of the dashboard, with each queue and job filled in."""
    adapter = URLS.bind("localhost")
    values = {"name": queues, "job_id": job_ids, "form_id": [form_id]}
    urls = set()
    for rule in URLS.iter_rules():
        if rule.methods is not None and "GET" not in rule.methods:
            continue
        names = sorted(rule.arguments)
        choices: list[dict[str, str]] = [{}]
        for name in names:
            choices = [{**c, name: v} for c in choices for v in values.get(name, [])]
        for args in choices:
            try:
                urls.add(adapter.build(rule.endpoint, args, method="GET"))
            except BuildError:
                continue
    return sorted(u for u in urls if "/static/" not in u)


def dramatiq_urls(app_client: Client, queues: list[str]) -> list[str]:
    """dramatiq-dashboard's pages: the queue list, every tab of every queue, every message."""
    urls = ["/dramatiq/"]
    for queue in queues:
        for tab in ("standard", "delayed", "failed"):
            page = f"/dramatiq/queues/{queue}/{tab}"
            urls.append(page)
            html = app_client.get(page, auth=AUTH).get_data(as_text=True)
            urls += sorted(set(re.findall(rf'href="(/dramatiq/queues/{re.escape(queue)}/{tab}/[^"]+)"',
                                          html)))
    return urls


@pytest.mark.slow
def test_no_page_api_metric_or_log_line_shows_a_students_name_or_email(
        start_workers: Any, tmp_path: Path, broker: GabayBroker, redis_client: redis.Redis,
        settings: Settings, brevo: FakeBrevo) -> None:
    brevo.script(brevo_server.rate_limited(reset=1))  # the first email waits: one retry
    workers = start_workers(processes=1, threads=2, queues=(FORM_RESPONSE,),
                            env=worker_env(tmp_path / "outbox", brevo))
    retried = process_form_response.send(submission("privacy-retried"))
    broken = submission("privacy-broken")
    broken["answers"] = []  # the worker rejects it: a dead letter
    enqueue_unchecked(process_form_response, broken)
    delayed = process_form_response.send_with_options(args=(submission("privacy-delayed"),),
                                                      delay=600_000)
    waiting = grade_form_response.send(submission("privacy-waiting"))  # no grading worker runs

    record = wait_for_job(redis_client, settings, retried, JobStatus.SUCCEEDED)
    assert record.result is not None and len(brevo.accepted) == 1
    assert brevo.accepted[0]["to"] == [{"email": EMAIL, "name": NAME}]  # the student got it
    (dead,) = wait_for(lambda: dead_letters(redis_client, broker.namespace), timeout=30,
                       message="the broken submission to be dead-lettered")
    assert dead["args"] == [] and CLAIM_OPTION in dead["options"]  # the reference, kept
    wait_for(lambda: QueueStats(redis_client, settings).recent_failures(), timeout=5,
             message="the final failure to be published")
    succeeded_claims = [k for k in redis_client.scan_iter(match=settings.keys.claim("*"))]
    assert len(succeeded_claims) == 3  # broken, delayed, waiting; the sent one's was deleted

    app = Client(make_app(with_password(settings), redis_client, broker))
    queues = [FORM_RESPONSE, GRADING]
    job_ids = [retried, job_id_for("privacy-broken"), job_id_for("privacy-delayed"),
               str(waiting), delayed.message_id]
    pages = operator_urls(app, queues, job_ids, sample("mixed-score")["form"]["id"])
    pages += dramatiq_urls(app, queues)
    assert any(p.startswith("/dramatiq/queues/form-response-processing/failed/") for p in pages)
    for url in pages:
        answer = app.get(url, auth=AUTH)
        assert answer.status_code < 500, url
        assert_nothing_personal(answer.get_data(as_text=True), url)

    failed_tab = app.get(f"/dramatiq/queues/{FORM_RESPONSE}/failed", auth=AUTH).get_data(as_text=True)
    assert "InvalidInput" in failed_tab and dead["message_id"] in failed_tab  # reason and ids

    workers.stop(timeout=30)
    assert "Retrying message" in workers.log()  # the log is the worker's, with the retry in it
    assert_nothing_personal(workers.log(), "the worker log")


@pytest.mark.slow
def test_a_forgotten_students_queued_payload_dead_letters_with_one_line(
        start_workers: Any, tmp_path: Path, broker: GabayBroker, redis_client: redis.Redis,
        settings: Settings) -> None:
    process_form_response.send(submission("privacy-forgotten"))

    out = CliRunner().invoke(main, ["data", "forget", "--student", EMAIL])

    assert out.exit_code == 0, out.output
    assert out.output.rstrip().endswith(", 1 queued payloads")
    assert not list(redis_client.scan_iter(match=settings.keys.claim("*")))
    workers = start_workers(processes=1, threads=2, queues=(FORM_RESPONSE,),
                            env=worker_env(tmp_path / "outbox"))
    (dead,) = wait_for(lambda: dead_letters(redis_client, broker.namespace), timeout=30,
                       message="the message without payload to be dead-lettered")
    assert dead["options"].get("retries", 0) == 0  # at once, no retry
    (failure,) = wait_for(lambda: QueueStats(redis_client, settings).recent_failures(), timeout=5,
                          message="the final failure to be published")
    assert failure.reason.startswith("PayloadGone: the payload of process_form_response message ")
    assert "older than CLAIM_CHECK_TTL or its student was forgotten" in failure.reason
    workers.stop(timeout=30)
    lines = [line for line in workers.log().splitlines() if "Dead-lettered without retries" in line]
    assert len(lines) == 1 and dead["message_id"] in lines[0]
    assert "Traceback" not in workers.log()
    assert not (tmp_path / "outbox").exists()  # nothing was sent


def test_a_plain_message_of_an_actor_without_claim_check_is_unchanged(
        broker: GabayBroker, redis_client: redis.Redis, settings: Settings) -> None:
    message = broker.enqueue(dramatiq.Message(queue_name="system", actor_name="probe",
                                              args=("token-1",), kwargs={}, options={}))
    assert message.args == ("token-1",) and CLAIM_OPTION not in message.options
    assert not list(redis_client.scan_iter(match=settings.keys.claim("*")))


def test_the_job_command_shows_ids_and_never_the_students_name_or_address(
        redis_client: redis.Redis, settings: Settings, tmp_path: Path) -> None:
    from gabay.feedback.pipeline import FeedbackContext, process

    ctx = FeedbackContext.build(settings.model_copy(update={"email_outbox_dir": tmp_path}), redis_client)
    process(ctx, submission("resp-privacy-cli"))
    job_id = job_id_for("resp-privacy-cli")
    runner = CliRunner()

    for args in (["job", job_id], ["job", job_id, "--json"]):
        shown = runner.invoke(main, args)
        assert shown.exit_code == 0, shown.output
        assert_nothing_personal(shown.output, " ".join(args))
    assert person_id(EMAIL) in runner.invoke(main, ["job", job_id]).output
