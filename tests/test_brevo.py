"""The Brevo client against a fake Brevo speaking the real wire format."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from gabay.errors import EmailRejected, EmailRetryable
from gabay.mail.brevo import BrevoClient, email_tag
from gabay.mail.brevo_log import BrevoLog
from gabay.mail.mailer import BrevoMailer, OutboxMailer, build_mailer
from gabay.mail.render import Address, RenderedEmail
from gabay.settings import Settings, load_settings
from tests.fakes import brevo_server
from tests.fakes.brevo_server import FakeBrevo

KEY = "11111111-2222-5333-8444-555555555555"


def settings_for(server: FakeBrevo, api_key: str | None = None) -> Settings:
    return load_settings(brevo_api_key=api_key or server.api_key, brevo_base_url=server.base_url,
                         brevo_timeout=5, email_sender="feedback@school.example",
                         email_sender_name="Gabay Feedback")


def message(to: str = "ana@student.example") -> RenderedEmail:
    return RenderedEmail(sender=Address("feedback@school.example", "Gabay Feedback"),
                         to=Address(to, "Ana Lim"), subject="Your feedback", html="<p>Hi</p>",
                         text="Hi", tags=["gabay-feedback"], headers={"X-Gabay-Response-Id": "r1"})


def test_an_accepted_email_returns_brevos_message_id(brevo: FakeBrevo) -> None:
    result = BrevoClient(settings_for(brevo)).send(message(), KEY)

    assert result.message_id is not None and result.message_id.endswith("@smtp-relay.mailin.fr>")
    assert not result.duplicate
    request = brevo.requests[0]
    assert request["path"] == "/v3/smtp/email"
    assert request["headers"]["api-key"] == brevo.api_key
    assert request["body"] == {
        "sender": {"email": "feedback@school.example", "name": "Gabay Feedback"},
        "to": [{"email": "ana@student.example", "name": "Ana Lim"}],
        "subject": "Your feedback",
        "htmlContent": "<p>Hi</p>",
        "textContent": "Hi",
        "tags": ["gabay-feedback", f"gabay-email:{KEY}"],
        "headers": {"X-Gabay-Response-Id": "r1", "idempotencyKey": KEY},
    }
    assert len(brevo.accepted) == 1


def test_every_email_is_tagged_by_its_idempotency_key_and_nothing_personal(brevo: FakeBrevo) -> None:
    client = BrevoClient(settings_for(brevo))
    client.send(message("ana@student.example"), KEY)
    client.send(message("ben@student.example"), "22222222-2222-5333-8444-555555555555")

    tags = [email["tags"][-1] for email in brevo.accepted]
    assert tags == [email_tag(KEY), email_tag("22222222-2222-5333-8444-555555555555")]
    assert all("@" not in tag and "Ana" not in tag and "student" not in tag for tag in tags)


def test_a_repeated_idempotency_key_means_already_accepted(brevo: FakeBrevo) -> None:
    client = BrevoClient(settings_for(brevo))
    client.send(message(), KEY)

    again = client.send(message(), KEY)

    assert again.duplicate and again.message_id is None
    assert len(brevo.accepted) == 1


def test_429_is_retryable_after_the_reset_brevo_announces(brevo: FakeBrevo) -> None:
    brevo.script(brevo_server.rate_limited(reset=7))

    with pytest.raises(EmailRetryable) as caught:
        BrevoClient(settings_for(brevo)).send(message(), KEY)

    assert caught.value.retry_after == 7
    assert caught.value.maybe_sent is False
    assert brevo.accepted == []


@pytest.mark.parametrize("behaviour", [brevo_server.server_error(500), brevo_server.server_error(503),
                                       brevo_server.drop(), brevo_server.accept_then_drop()])
def test_server_errors_and_lost_connections_are_retryable_and_may_have_sent(
        brevo: FakeBrevo, behaviour: brevo_server.Behaviour) -> None:
    brevo.script(behaviour)

    with pytest.raises(EmailRetryable) as caught:
        BrevoClient(settings_for(brevo)).send(message(), KEY)

    assert caught.value.maybe_sent is True
    assert caught.value.retry_after is None


def test_a_retry_after_a_lost_answer_is_recognised_as_already_accepted(brevo: FakeBrevo) -> None:
    brevo.script(brevo_server.accept_then_drop())
    client = BrevoClient(settings_for(brevo))
    with pytest.raises(EmailRetryable):
        client.send(message(), KEY)

    assert client.send(message(), KEY).duplicate
    assert len(brevo.accepted) == 1


@pytest.mark.parametrize(("behaviour", "expected"), [
    (brevo_server.bad_request(), "HTTP 400 invalid_parameter: email is not valid in to"),
    (brevo_server.unauthorized(), "HTTP 401 unauthorized: Key not found"),
    (brevo_server.not_enough_credits(), "HTTP 402 not_enough_credits"),
])
def test_400_401_402_are_final_with_a_clear_reason(brevo: FakeBrevo, behaviour: brevo_server.Behaviour,
                                                   expected: str) -> None:
    brevo.script(behaviour)

    with pytest.raises(EmailRejected, match=expected):
        BrevoClient(settings_for(brevo)).send(message(), KEY)


def test_a_wrong_key_is_rejected_and_never_shown(brevo: FakeBrevo) -> None:
    with pytest.raises(EmailRejected) as caught:
        BrevoClient(settings_for(brevo, api_key="xkeysib-wrong-secret")).send(message(), KEY)

    assert "Key not found" in str(caught.value)
    assert "xkeysib-wrong-secret" not in str(caught.value)


def test_an_unreachable_brevo_is_retryable_and_surely_sent_nothing() -> None:
    with brevo_server.running() as server:
        settings = settings_for(server)
    # The server is gone: the connection is refused before any byte of the request leaves.
    with pytest.raises(EmailRetryable, match="unreachable") as caught:
        BrevoClient(settings).send(message(), KEY)
    assert caught.value.maybe_sent is False


def test_a_brevo_whose_name_does_not_resolve_surely_sent_nothing(brevo: FakeBrevo) -> None:
    settings = settings_for(brevo).model_copy(update={"brevo_base_url": "http://brevo.invalid/v3"})
    with pytest.raises(EmailRetryable) as caught:
        BrevoClient(settings).send(message(), KEY)
    assert caught.value.maybe_sent is False


# The fake itself must be faithful, or the tests above prove nothing.

def test_the_fake_answers_401_without_a_key_and_400_for_a_bad_body(brevo: FakeBrevo) -> None:
    url = brevo.base_url + "/smtp/email"
    no_key = requests.post(url, json={}, timeout=5)
    assert no_key.status_code == 401
    assert no_key.json() == {"message": "authentication not found in headers", "code": "unauthorized"}

    headers = {"api-key": brevo.api_key}
    no_sender = requests.post(url, json={"to": [{"email": "a@b.example"}]}, headers=headers, timeout=5)
    assert no_sender.status_code == 400 and no_sender.json()["code"] == "missing_parameter"
    bad_to = requests.post(url, json={"sender": {"email": "s@b.example"}, "to": [{"email": "nope"}],
                                      "subject": "x", "textContent": "x"}, headers=headers, timeout=5)
    assert bad_to.status_code == 400 and bad_to.json() == {
        "code": "invalid_parameter", "message": "email is not valid in to"}
    assert no_sender.headers["x-sib-ratelimit-limit"] and "x-sib-ratelimit-reset" in no_sender.headers
    assert brevo.accepted == []


# The mailer: chosen once from the settings; Brevo's keeps one pooled session.

def test_the_mailer_is_brevo_with_a_key_and_the_outbox_without(brevo: FakeBrevo, tmp_path: Path) -> None:
    with_key = build_mailer(settings_for(brevo))
    without = build_mailer(load_settings(email_outbox_dir=tmp_path))

    assert isinstance(with_key, BrevoMailer)
    assert with_key.via == "brevo" and isinstance(with_key.log, BrevoLog)
    assert with_key.log.session is with_key.client.session  # one pool for sends and log look-ups
    assert isinstance(without, OutboxMailer)
    assert (without.via, without.log, without.directory) == ("outbox", None, tmp_path)


def test_the_brevo_mailer_sends_every_email_over_one_kept_connection(brevo: FakeBrevo) -> None:
    mailer = BrevoMailer(settings_for(brevo))

    first = mailer.send(message(), KEY, "unused.eml")
    second = mailer.send(message("ben@student.example"), "22222222-2222-5333-8444-555555555555", "unused.eml")

    assert first.via == second.via == "brevo"
    assert first.message_id == brevo.accepted[0]["messageId"] and not first.earlier
    assert second.message_id == brevo.accepted[1]["messageId"]
    assert brevo.requests[0]["client"] == brevo.requests[1]["client"]  # the same TCP connection


def test_the_brevo_mailer_reports_a_duplicate_as_sent_earlier(brevo: FakeBrevo) -> None:
    mailer = BrevoMailer(settings_for(brevo))
    mailer.send(message(), KEY, "unused.eml")

    again = mailer.send(message(), KEY, "unused.eml")

    assert again.earlier and again.message_id is None and len(brevo.accepted) == 1
