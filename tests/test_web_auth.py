"""Who may use the dashboard, and how its state-changing requests are protected."""

from __future__ import annotations

import hmac
import logging
from typing import Any

import dramatiq
import pytest
import redis
from click.testing import CliRunner
from werkzeug.test import Client

from gabay.broker import GabayBroker
from gabay.cli import main
from gabay.cluster.pause_flags import PauseFlags
from gabay.errors import ConfigError
from gabay.settings import Settings
from gabay.web import auth
from gabay.web.auth import check_bind
from tests.support.dashboard import PASSWORD, basic, make_app, with_password

ORIGIN = "http://localhost"
PROTECTED = ["/", "/live", "/api", "/api/status", "/api/queues", "/api/workers", "/api/jobs",
             "/api/jobs/x", "/api/llm", "/api/failures", "/api/csrf", "/metrics", "/dramatiq/",
             "/static/dashboard.js", "/no-such-page"]


@pytest.fixture
def client(settings: Settings, redis_client: redis.Redis, broker: GabayBroker) -> Client:
    return Client(make_app(with_password(settings), redis_client, broker))


def token_of(client: Client) -> str:
    """Log in like the page does: GET /api/csrf sets the session cookie and returns its token."""
    token: str = client.get("/api/csrf", auth=("admin", PASSWORD)).json["csrf_token"]
    return token


def post(client: Client, path: str, token: str | None = None, origin: str | None = ORIGIN,
         **kwargs: Any) -> Any:
    headers = {"X-CSRF-Token": token} if token else {}
    if origin:
        headers["Origin"] = origin
    return client.post(path, headers=headers, auth=("admin", PASSWORD), **kwargs)


@pytest.mark.parametrize("path", PROTECTED)
def test_every_page_needs_credentials(client: Client, path: str) -> None:
    anonymous = client.get(path)
    wrong_password = client.get(path, headers=basic("admin", PASSWORD + "x"))
    wrong_user = client.get(path, headers=basic("root", PASSWORD))

    for answer in (anonymous, wrong_password, wrong_user):
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith('Basic realm="gabay dashboard"')
        assert answer.json == {"error": "authentication required", "status": 401}
    assert client.get(path, headers=basic("admin", PASSWORD)).status_code in (200, 404)


def test_healthz_is_open_for_probes(client: Client) -> None:
    assert client.get("/healthz").status_code == 200


def test_credentials_are_compared_in_constant_time_both_always(client: Client,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    answer = client.get("/api/status", headers=basic("intruder", "guess"))

    assert answer.status_code == 401
    assert (b"intruder", b"admin") in compared  # the user name is compared...
    assert (b"guess", PASSWORD.encode()) in compared  # ...and the password too, though the name was wrong


def test_without_a_password_the_dashboard_refuses_to_listen_beyond_loopback() -> None:
    with pytest.raises(ConfigError, match="DASHBOARD_PASSWORD"):
        check_bind("0.0.0.0", None)
    with pytest.raises(ConfigError):
        check_bind("192.168.1.20", None)
    with pytest.raises(ConfigError):
        check_bind("localhost", None)  # a name could resolve to anything
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", with_password(Settings()).dashboard_password)


def test_the_command_says_why_it_refuses_to_bind_publicly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASHBOARD_PASSWORD", raising=False)
    result = CliRunner().invoke(main, ["dashboard", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 1
    assert "refusing to serve the dashboard on '0.0.0.0' without authentication" in result.output


def test_without_a_password_loopback_is_served_openly_and_says_so(
        settings: Settings, redis_client: redis.Redis, broker: GabayBroker,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gabay.web.app"):
        client = Client(make_app(with_password(settings, None), redis_client, broker))
    assert "WITHOUT authentication" in caplog.text

    page = client.get("/", base_url="http://127.0.0.1:8080")
    rebinding = client.get("/api/status", base_url="http://attacker.example:8080")

    assert page.status_code == 200
    assert "Authentication is off" in page.get_data(as_text=True)
    assert rebinding.status_code == 403  # a foreign Host name (DNS rebinding) is refused


def test_pause_needs_the_session_token_and_our_origin(client: Client, redis_client: redis.Redis,
                                                      settings: Settings) -> None:
    flags = PauseFlags(redis_client, settings)
    token = token_of(client)

    no_token = post(client, "/api/queues/generation/pause")
    forged_token = post(client, "/api/queues/generation/pause", token="0" * 64)
    foreign_origin = post(client, "/api/queues/generation/pause", token, origin="https://evil.example")
    no_origin = post(client, "/api/queues/generation/pause", token, origin=None)

    for answer in (no_token, forged_token, foreign_origin, no_origin):
        assert answer.status_code == 403
        assert answer.mimetype == "application/json"
    assert flags.paused_queues() == set()

    accepted = post(client, "/api/queues/generation/pause", token)

    assert accepted.status_code == 200
    assert accepted.json["paused"] == ["generation"]
    assert flags.paused_queues() == {"generation"}


def test_a_referer_of_this_host_stands_in_for_a_missing_origin(client: Client) -> None:
    token = token_of(client)
    answer = client.post("/api/pause", headers={"X-CSRF-Token": token, "Referer": ORIGIN + "/"},
                         auth=("admin", PASSWORD))
    assert answer.status_code == 200


def test_a_token_is_bound_to_its_session(settings: Settings, redis_client: redis.Redis,
                                         broker: GabayBroker) -> None:
    app = make_app(with_password(settings), redis_client, broker)
    alice, mallory = Client(app), Client(app)
    stolen = token_of(alice)
    token_of(mallory)  # mallory has a session of her own

    answer = post(mallory, "/api/restart", stolen)

    assert answer.status_code == 403


def test_resume_and_restart_are_protected_too(client: Client, redis_client: redis.Redis,
                                              settings: Settings) -> None:
    token = token_of(client)
    assert post(client, "/api/pause", token).status_code == 200
    assert post(client, "/api/resume").status_code == 403
    assert post(client, "/api/restart", origin="https://evil.example").status_code == 403
    assert PauseFlags(redis_client, settings).paused_queues()  # still paused

    resumed = post(client, "/api/resume", token)
    restarted = post(client, "/api/restart", token)

    assert resumed.status_code == 200
    assert resumed.json["paused"] == []
    assert restarted.status_code == 200
    assert client.get("/api/status", auth=("admin", PASSWORD)).json["restart_attempts"] == 1


def dead_letter(broker: GabayBroker) -> str:
    """A message in the dead-letter set of ``generation``; returns its Redis id."""
    message = broker.enqueue(dramatiq.Message(queue_name="generation", actor_name="probe",
                                              args=("x",), kwargs={}, options={}))
    redis_id = message.options["redis_message_id"]
    broker.client.lpop(broker.settings.keys.queue("generation"))
    broker.client.hdel(broker.settings.keys.messages("generation"), redis_id)
    broker.client.zadd(broker.settings.keys.dead_letters("generation"), {redis_id: 1})
    broker.client.hset(broker.settings.keys.dead_messages("generation"), redis_id, message.encode())
    return str(redis_id)


def test_dramatiq_dashboard_posts_need_our_origin(client: Client, broker: GabayBroker) -> None:
    redis_id = dead_letter(broker)
    client.set_cookie("__dd_csrf", "abc")
    form = {"__dd_csrf": "abc", "queue": "generation.XQ", "id": redis_id}
    dead = broker.settings.keys.dead_messages("generation")

    foreign = client.post("/dramatiq/delete-message", data=form, auth=("admin", PASSWORD),
                          headers={"Origin": "https://evil.example"})
    no_origin = client.post("/dramatiq/delete-message", data=form, auth=("admin", PASSWORD))

    assert foreign.status_code == 403
    assert no_origin.status_code == 403
    assert broker.client.hexists(dead, redis_id)

    same = client.post("/dramatiq/delete-message", data=form, auth=("admin", PASSWORD),
                       headers={"Origin": ORIGIN})

    assert same.status_code == 302
    assert not broker.client.hexists(dead, redis_id)


def test_pages_carry_security_headers(client: Client) -> None:
    page = client.get("/", auth=("admin", PASSWORD))
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert client.get("/dramatiq/", auth=("admin", PASSWORD)).headers["X-Frame-Options"] == "DENY"
