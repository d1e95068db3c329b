"""The operator console in headless Chromium against a real ``gabay dashboard`` process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gabay.cluster.cancel_requests import CancelRequests
from gabay.jobs import JobStatus, JobStore, LLMCall, StageTiming
from gabay.queues import FORM_RESPONSE
from gabay.settings import Settings
from tests.support.console_data import dead_letter, index_many
from tests.support.dashboard import PASSWORD, DashboardServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

if CHROMIUM.exists():
    from playwright.sync_api import Page, expect, sync_playwright

    expect.set_options(timeout=20_000)


@pytest.fixture
def page(worker_env: dict[str, str], tmp_path: Path, redis_client: redis.Redis) -> Iterator[tuple[Page, str]]:
    server = DashboardServer(worker_env, tmp_path / "dashboard.log").start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            context = browser.new_context(http_credentials={"username": "admin", "password": PASSWORD},
                                          viewport={"width": 1440, "height": 1000})
            tab = context.new_page()
            yield tab, server.url
            browser.close()
    finally:
        code = server.stop()
    assert code == 0, server.log()


def test_an_operator_pages_filters_opens_retries_and_cancels_jobs(
        page: tuple[Page, str], redis_client: redis.Redis, settings: Settings, tmp_path: Path) -> None:
    tab, url = page
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    ids = index_many(redis_client, settings, 120, float(int(time.time()) - 5000))
    store = JobStore(redis_client, settings)
    redis_id = dead_letter(redis_client, settings, "fb-dead")
    timing = StageTiming(started_at=10.0, finished_at=13.25)
    store.update("fb-dead", lambda r: r.stages.update(feedback=timing))
    store.add_call("fb-dead", LLMCall(stage="feedback", provider="openai", model="gpt-4o-mini",
                                      prompt_tokens=700, cached_tokens=128, completion_tokens=90,
                                      cost_usd=0.000155, duration_ms=640))

    tab.goto(url + "/jobs")
    rows = tab.locator("tr.job-row")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("fb-dead")  # the newest
    tab.locator("#next").click()
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text(ids[::-1][49])
    tab.locator("#next").click()
    expect(rows).to_have_count(21)
    expect(tab.locator("#next")).to_have_count(0)

    tab.goto(url + "/jobs")
    tab.select_option("#status", "failed")
    tab.select_option("#kind", "questions")
    tab.locator("#apply").click()
    expect(rows).to_have_count(len([n for n in range(120) if n % 3 == 1 and n % 2 == 1]))
    for status in rows.evaluate_all("rows => rows.map(r => r.dataset.status)"):
        assert status == "failed"

    tab.fill("#q", "fb-dead")
    tab.locator("#apply").click()
    expect(tab).to_have_url(url + "/jobs/fb-dead")
    expect(tab.locator("#job-status")).to_have_text("failed")
    expect(tab.locator("#stages")).to_contain_text("3.25")
    expect(tab.locator("#calls tr.call")).to_have_count(1)
    expect(tab.locator("#calls")).to_contain_text("$0.000155")
    expect(tab.locator("#dead-letter")).to_contain_text(FORM_RESPONSE)

    tab.locator("#retry").click()  # asks first
    expect(tab.locator("#confirm-ids")).to_have_text("fb-dead")
    assert store.get("fb-dead").status is JobStatus.FAILED
    tab.locator("#confirm-button").click()
    expect(tab.locator("#outcomes")).to_contain_text(f"requeued on {FORM_RESPONSE} (message {redis_id})")
    assert store.get("fb-dead").status is JobStatus.QUEUED
    assert redis_client.lrange(settings.keys.queue(FORM_RESPONSE), 0, -1) == [redis_id.encode()]

    tab.goto(url + "/jobs?status=queued")
    chosen = [ids[117], ids[114]]  # queued ones, on the first page
    for job_id in chosen:
        tab.get_by_label(f"select {job_id}").check()
    tab.locator("#bulk-cancel").click()
    expect(tab.locator("#confirm-ids li")).to_have_text(chosen)
    cancels = CancelRequests(redis_client, settings.keys)
    assert not any(cancels.is_requested(j) for j in chosen)
    tab.locator("#confirm-button").click()
    expect(tab.locator("h2")).to_contain_text("2 of 2 done")
    assert all(cancels.is_requested(j) for j in chosen)
    tab.screenshot(path=str(tmp_path / "cancelled.png"), full_page=True)
    assert errors == []


def test_a_form_with_a_forged_token_is_refused(page: tuple[Page, str], redis_client: redis.Redis,
                                               settings: Settings) -> None:
    tab, url = page
    JobStore(redis_client, settings).create("questions", "req-1")

    tab.goto(url + "/jobs/req-1")
    tab.eval_on_selector("form[action$='/cancel'] input[name=csrf_token]", "e => e.value = 'f'.repeat(64)")
    with tab.expect_response(lambda r: r.url.endswith("/jobs/req-1/cancel")) as answer:
        tab.locator("#cancel").click()

    assert answer.value.status == 403
    expect(tab.locator("body")).to_contain_text("missing or invalid CSRF token")
    tab.goto(url + "/jobs/req-1")
    refused = tab.evaluate("""async () => (await fetch('/jobs/req-1/cancel', {method: 'POST',
        headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'confirm=yes'})).status""")
    assert refused == 403
    assert not CancelRequests(redis_client, settings.keys).is_requested("req-1")
