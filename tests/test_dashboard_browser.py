"""End to end in headless Chromium: real workers, the real dashboard process, an operator's clicks."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import requests

from gabay.actors import broker, probe
from gabay.ops.manager import WorkerManager
from gabay.settings import Settings
from tests.support.actors import record
from tests.support.dashboard import PASSWORD, DashboardServer
from tests.support.polling import wait_for
from tests.support.processes import WorkerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                     "(apt-get install chromium)"),
]

if CHROMIUM.exists():
    from playwright.sync_api import Page, expect, sync_playwright

    expect.set_options(timeout=30_000)


@pytest.fixture
def page(worker_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Page, str]]:
    """A logged-in browser page and the URL of a real ``gabay dashboard`` process."""
    server = DashboardServer(worker_env, tmp_path / "dashboard.log").start()
    assert requests.get(server.url + "/healthz", timeout=10).headers["Server"] == "gabay"  # waitress
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            context = browser.new_context(
                http_credentials={"username": "admin", "password": PASSWORD},
                viewport={"width": 1440, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(30_000)
            yield page, server.url
            browser.close()
    finally:
        code = server.stop()
    assert code == 0, f"the dashboard did not stop cleanly on SIGTERM:\n{server.log()}"


def probed(client: redis.Redis, settings: Settings, token: str) -> bool:
    return bool(client.exists(settings.keys.probe(token)))


def test_an_operator_watches_pauses_resumes_and_browses_messages(
        start_workers: Callable[..., WorkerProcess], page: tuple[Page, str], redis_client: redis.Redis,
        settings: Settings, tmp_path: Path) -> None:
    browser_page, url = page
    errors: list[str] = []
    browser_page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    browser_page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    manager = WorkerManager(settings, redis_client)
    workers = start_workers(processes=1, threads=2)
    tokens = [uuid.uuid4().hex for _ in range(5)]
    for token in tokens:
        probe.send(token)
    broker.enqueue(probe.message_with_options(args=(), max_retries=0))  # fails for good: no token
    wait_for(lambda: all(probed(redis_client, settings, t) for t in tokens), timeout=60,
             message="the probes to run")
    wait_for(lambda: manager.get_status().per_queue["system"].failed == 1, timeout=60,
             message="the bad probe to be dead-lettered")

    browser_page.goto(url + "/")

    system = browser_page.locator("#queue-system")
    expect(system.locator("td.completed")).to_have_text("5")
    expect(system.locator("td.failed")).to_have_text("1")
    expect(system.locator("td.dead")).to_have_text("1")
    expect(browser_page.locator("#workers tbody tr")).to_have_count(1)
    expect(browser_page.locator("body")).to_contain_text("TypeError")
    expect(browser_page.locator("#health h2")).to_have_text("Healthy")

    system.get_by_role("button", name="Pause").click()

    expect(system).to_have_attribute("data-paused", "true")
    assert manager.get_status().per_queue["system"].paused
    wait_for(lambda: "paused: system" in workers.log(), timeout=30,
             message="the worker process to see the pause flag")
    held = uuid.uuid4().hex
    probe.send(held)
    record.send("after-the-held-probe")
    wait_for(lambda: redis_client.llen(settings.keys.test("record")) == 1, timeout=60,
             message="the unpaused test queue to be served")
    assert not probed(redis_client, settings, held)  # the paused queue was not served

    system.get_by_role("button", name="Resume").click()

    expect(system).to_have_attribute("data-paused", "false")
    wait_for(lambda: probed(redis_client, settings, held), timeout=60,
             message="the held probe to run after the resume")
    expect(system.locator("td.completed")).to_have_text("6")  # the page refreshes by itself
    browser_page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    browser_page.goto(url + "/dramatiq/")

    expect(browser_page.get_by_role("link", name="system")).to_be_visible()
    browser_page.get_by_role("link", name="system").click()
    expect(browser_page).to_have_url(url + "/dramatiq/queues/system")
    browser_page.screenshot(path=str(tmp_path / "dramatiq.png"), full_page=True)
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    assert errors == []  # no script error, no content-security-policy violation
