"""The exams' analytics in the dashboard: the JSON API and the page (werkzeug's test client)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr
from werkzeug.test import Client

from gabay.actors.analytics import refresh_exam_analytics
from gabay.broker import GabayBroker
from gabay.feedback.pipeline import FeedbackContext, process
from gabay.settings import Settings
from gabay.store.results import ResultsStore
from gabay.store.schema import upgrade
from tests.support.dashboard import PASSWORD, make_app, with_password
from tests.support.exam_samples import FORM_ID, exam_submissions

AUTH = ("admin", PASSWORD)


@pytest.fixture
def exam_settings(settings: Settings, tmp_path: Path) -> Settings:
    return with_password(settings).model_copy(update={
        "database_url": SecretStr(f"sqlite:///{tmp_path / 'results.sqlite3'}"),
        "email_outbox_dir": tmp_path / "outbox"})


@pytest.fixture
def results(exam_settings: Settings) -> Iterator[ResultsStore]:
    store = ResultsStore.from_settings(exam_settings)
    upgrade(store.engine)
    yield store
    store.dispose()


@pytest.fixture
def client(exam_settings: Settings, redis_client: redis.Redis, broker: GabayBroker) -> Client:
    return Client(make_app(exam_settings, redis_client, broker))


def analysed(settings: Settings, client: redis.Redis, store: ResultsStore, count: int) -> None:
    ctx = FeedbackContext.build(settings, client, results=store, enqueue=lambda *a, **k: None)
    for data in exam_submissions(count):
        process(ctx, data)
    refresh_exam_analytics(store, FORM_ID)


def test_the_exams_list_and_an_exams_report(client: Client, exam_settings: Settings,
                                            redis_client: redis.Redis, results: ResultsStore) -> None:
    assert client.get("/api/exams", auth=AUTH).json == {"exams": []}
    analysed(exam_settings, redis_client, results, 4)

    [exam] = client.get("/api/exams", auth=AUTH).json["exams"]
    assert exam["form_id"] == FORM_ID and exam["submissions_stored"] == exam["submissions_counted"] == 4
    assert exam["computed_at"].startswith("20")

    answer = client.get(f"/api/exams/{FORM_ID}/analytics", auth=AUTH)
    assert answer.status_code == 200
    document = answer.json
    assert document["form_id"] == FORM_ID and document["submissions_counted"] == 4
    assert document["report"]["summary"]["count"] == 4
    assert [i["question_id"] for i in document["report"]["items"]] == ["q1", "q2", "q3", "q4", "q5"]
    assert "@" not in answer.get_data(as_text=True) and "Santos" not in answer.get_data(as_text=True)
    assert "GET /api/exams/<form_id>/analytics" in client.get("/api", auth=AUTH).json["endpoints"]


def test_an_exam_without_analytics_is_a_json_404(client: Client, results: ResultsStore) -> None:
    answer = client.get("/api/exams/form-unknown/analytics", auth=AUTH)

    assert answer.status_code == 404
    assert answer.json["status"] == 404 and "form-unknown" in answer.json["error"]
    assert client.get("/api/exams/form-unknown/analytics").status_code == 401  # authenticated too


def test_the_exam_page_shows_the_aggregates_and_the_items(client: Client, exam_settings: Settings,
                                                          redis_client: redis.Redis,
                                                          results: ResultsStore) -> None:
    analysed(exam_settings, redis_client, results, 4)

    page = client.get(f"/exams/{FORM_ID}", auth=AUTH)

    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<dd id="count">4</dd>' in html
    assert all(f'id="item-q{n}"' in html for n in range(1, 6))
    assert "Cronbach" in html and "KR-20" in html
    for name in ("Maria", "Santos", "Jose", "Ana Lim", "Bautista", "@"):
        assert name not in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]

    missing = client.get("/exams/form-unknown", auth=AUTH)
    assert missing.status_code == 404 and "No analytics for this exam" in missing.get_data(as_text=True)


def test_a_results_database_that_is_down_is_a_503(settings: Settings, tmp_path: Path,
                                                  redis_client: redis.Redis, broker: GabayBroker) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the database's directory should be")
    down = with_password(settings).model_copy(update={
        "database_url": SecretStr(f"sqlite:///{blocker / 'results.sqlite3'}")})
    client = Client(make_app(down, redis_client, broker))

    answer = client.get("/api/exams", auth=AUTH)

    assert answer.status_code == 503 and "results database failed" in answer.json["error"]
