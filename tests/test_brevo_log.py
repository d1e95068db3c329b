"""Before re-sending an email that may be out, Brevo's list of sent emails is asked.

Real Redis for the sent records, a fake Brevo speaking the real wire format for sends and for
``GET /v3/smtp/emails``; what counts is how many emails the fake accepted.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from gabay.errors import ConfigError, EmailLogUnavailable, EmailRetryable, EmailUncertain
from gabay.mail.brevo import BrevoClient, email_tag
from gabay.mail.brevo_log import MAX_PAGES, PAGE_SIZE, BrevoLog, listed
from gabay.mail.delivery import Guard, deliver_once
from gabay.mail.mailer import BrevoMailer, Delivery, OutboxMailer
from gabay.mail.render import Address, RenderedEmail
from gabay.mail.sent_records import SentRecords
from gabay.settings import Settings, load_settings
from tests.fakes import brevo_server
from tests.fakes.brevo_server import Behaviour, FakeBrevo

KEY = "11111111-2222-5333-8444-555555555555"
JOB = "fb-log-0001"
ANA = "ana@student.example"
ITEM_FIELDS = {"email", "subject", "messageId", "uuid", "date", "from", "tags"}


def settings_for(server: FakeBrevo, **overrides: Any) -> Settings:
    return load_settings(brevo_api_key=server.api_key, brevo_base_url=server.base_url, brevo_timeout=2,
                         email_sender="feedback@school.example", email_sender_name="Gabay Feedback",
                         **overrides)


def message(to: str = ANA) -> RenderedEmail:
    return RenderedEmail(sender=Address("feedback@school.example", "Gabay Feedback"),
                         to=Address(to, "Ana Lim"), subject="Your feedback", html="<p>Hi</p>", text="Hi",
                         tags=["gabay-feedback"])


def rig(client: redis.Redis, server: FakeBrevo, **overrides: Any) -> tuple[BrevoMailer, SentRecords]:
    settings = settings_for(server, **overrides)
    return BrevoMailer(settings), SentRecords(client, settings)


def deliver(mailer: BrevoMailer | OutboxMailer, records: SentRecords, job: str = JOB, key: str = KEY,
            to: str = ANA, guard: Guard | None = None) -> Delivery:
    return deliver_once(mailer, records, job, key, message(to), "email.eml", guard=guard)


def lost_first_attempt(mailer: BrevoMailer, records: SentRecords, behaviour: Behaviour,
                       brevo: FakeBrevo, job: str = JOB, key: str = KEY, to: str = ANA) -> None:
    """A first attempt whose outcome the client never learns (it may have sent the email)."""
    brevo.script(behaviour)
    with pytest.raises(EmailRetryable) as caught:
        deliver(mailer, records, job, key, to)
    assert caught.value.maybe_sent is True


def backdate(client: redis.Redis, records: SentRecords, seconds: float, job: str = JOB) -> None:
    """Move the earlier attempts ``seconds`` into the past (instead of waiting for them to age)."""
    record = records.get(job)
    fields = ("uncertain_since", "maybe_sent_until", "lease_until")
    client.hset(records.key(job), mapping={
        name: float(record[name]) - seconds for name in fields if float(record.get(name) or 0) > 0})


# The rules, as deliver_once applies them.

def test_a_first_attempt_sends_without_asking_the_list(redis_client: redis.Redis, brevo: FakeBrevo) -> None:
    mailer, records = rig(redis_client, brevo)

    delivery = deliver(mailer, records)

    assert delivery.message_id == brevo.accepted[0]["messageId"] and not delivery.earlier
    assert len(brevo.sends) == 1 and brevo.log_queries == []


def test_an_email_accepted_then_lost_is_found_in_the_list_and_not_sent_again(
        redis_client: redis.Redis, brevo: FakeBrevo) -> None:
    brevo.deduplicate = False
    mailer, records = rig(redis_client, brevo)
    lost_first_attempt(mailer, records, brevo_server.accept_then_drop(), brevo)

    delivery = deliver(mailer, records)

    assert delivery.earlier and delivery.message_id == brevo.accepted[0]["messageId"]
    assert len(brevo.accepted) == 1 and len(brevo.sends) == 1 and len(brevo.log_queries) == 1
    record = records.get(JOB)
    assert (record["state"], record["message_id"]) == ("sent", brevo.accepted[0]["messageId"])
    assert record["note"] == "found in the provider's log"
    assert deliver(mailer, records).earlier and len(brevo.requests) == 2  # the record answers now


def test_five_accepted_then_dropped_sends_without_deduplication_end_as_five_emails(
        redis_client: redis.Redis, brevo: FakeBrevo) -> None:
    brevo.deduplicate, brevo.lose_answers = False, True
    mailer, records = rig(redis_client, brevo)
    emails = [(f"fb-log-{n}", f"11111111-2222-5333-8444-00000000000{n}", f"student{n}@student.example")
              for n in range(5)]
    for job, key, to in emails:
        with pytest.raises(EmailRetryable):
            deliver(mailer, records, job, key, to)
    brevo.lose_answers = False

    retried = [deliver(mailer, records, job, key, to) for job, key, to in emails]

    assert len(brevo.accepted) == 5 and len(brevo.sends) == 5
    assert all(d.earlier for d in retried)
    assert [d.message_id for d in retried] == [a["messageId"] for a in brevo.accepted]
    # The fake really does not de-duplicate: a blind retry would have been a sixth email.
    BrevoClient(settings_for(brevo)).send(message("student0@student.example"), emails[0][1])
    assert len(brevo.accepted) == 6


def test_not_listed_and_younger_than_the_settle_delay_waits_without_sending(
        redis_client: redis.Redis, brevo: FakeBrevo) -> None:
    mailer, records = rig(redis_client, brevo)
    settle = mailer.log.settle_seconds if mailer.log else 0
    assert settle == 120  # the default of BREVO_LOG_SETTLE_SECONDS
    lost_first_attempt(mailer, records, brevo_server.server_error(503), brevo)
    uncertain_since = records.get(JOB)["uncertain_since"]

    with pytest.raises(EmailRetryable) as caught:
        deliver(mailer, records)

    assert settle - 5 < (caught.value.retry_after or 0) <= settle + 1
    assert caught.value.maybe_sent is False
    assert len(brevo.sends) == 1 and len(brevo.log_queries) == 1 and brevo.accepted == []
    record = records.get(JOB)
    assert record["uncertain_since"] == uncertain_since and record["lease_until"] == "0"


def test_not_listed_after_the_settle_delay_is_sent_again_with_the_same_key(
        redis_client: redis.Redis, brevo: FakeBrevo) -> None:
    mailer, records = rig(redis_client, brevo)
    lost_first_attempt(mailer, records, brevo_server.server_error(500), brevo)
    backdate(redis_client, records, 121)

    delivery = deliver(mailer, records)

    assert len(brevo.sends) == 2 and len(brevo.accepted) == 1 and len(brevo.log_queries) == 1
    assert [s["body"]["headers"]["idempotencyKey"] for s in brevo.sends] == [KEY, KEY]
    assert delivery.message_id == brevo.accepted[0]["messageId"] and not delivery.earlier
    assert records.get(JOB)["state"] == "sent"


def test_the_settle_delay_is_a_setting(redis_client: redis.Redis, brevo: FakeBrevo) -> None:
    mailer, records = rig(redis_client, brevo, brevo_log_settle_seconds=0)
    lost_first_attempt(mailer, records, brevo_server.server_error(500), brevo)

    deliver(mailer, records)

    assert len(brevo.sends) == 2 and len(brevo.accepted) == 1
    with pytest.raises(ConfigError, match="BREVO_LOG_SETTLE_SECONDS"):
        load_settings(brevo_log_settle_seconds=-1)


def test_a_list_slower_than_brevo_is_waited_for_while_the_delay_runs(
        redis_client: redis.Redis, brevo: FakeBrevo) -> None:
    brevo.deduplicate, brevo.log_delay = False, 3600.0
    mailer, records = rig(redis_client, brevo)
    lost_first_attempt(mailer, records, brevo_server.accept_then_drop(), brevo)

    with pytest.raises(EmailRetryable):
        deliver(mailer, records)
    assert len(brevo.sends) == 1
    brevo.listed[0]["visible_at"] = 0  # the list catches up
    delivery = deliver(mailer, records)

    assert delivery.earlier and delivery.message_id == brevo.accepted[0]["messageId"]
    assert len(brevo.accepted) == 1 and len(brevo.sends) == 1


def test_a_list_later_than_the_delay_is_still_caught_by_the_key_within_its_window(
        redis_client: redis.Redis, brevo: FakeBrevo) -> None:
    brevo.log_delay = 3600.0
    mailer, records = rig(redis_client, brevo)
    lost_first_attempt(mailer, records, brevo_server.accept_then_drop(), brevo)
    backdate(redis_client, records, 121)

    delivery = deliver(mailer, records)

    assert len(brevo.sends) == 2 and len(brevo.accepted) == 1  # Brevo answered duplicate_parameter
    assert delivery.earlier and delivery.message_id is None


def test_a_crashed_attempt_counts_from_the_end_of_its_lease(redis_client: redis.Redis,
                                                            brevo: FakeBrevo) -> None:
    mailer, records = rig(redis_client, brevo)
    assert records.claim(JOB).status == "claimed"  # ...and the process dies: no release
    backdate(redis_client, records, records.lease_seconds + 1)  # its lease ran out a second ago

    with pytest.raises(EmailRetryable) as caught:
        deliver(mailer, records)

    # From the claim it would be 120 - 10 s; from the end of the lease, all but a second of 120 s.
    assert 117 < (caught.value.retry_after or 0) <= 121
    assert brevo.sends == [] and len(brevo.log_queries) == 1


@pytest.mark.parametrize("failure", [
    brevo_server.server_error(500), brevo_server.server_error(503), brevo_server.rate_limited(reset=7),
    brevo_server.drop(), brevo_server.unauthorized(),
    Behaviour("status", 200, {"count": 3}), Behaviour("status", 200, {"transactionalEmails": "none"}),
    Behaviour("status", 404, {"code": "document_not_found", "message": "List not found"}),
])
def test_a_list_that_cannot_be_read_fails_closed(redis_client: redis.Redis, brevo: FakeBrevo,
                                                  failure: Behaviour) -> None:
    brevo.deduplicate = False
    mailer, records = rig(redis_client, brevo)
    lost_first_attempt(mailer, records, brevo_server.server_error(500), brevo)
    backdate(redis_client, records, 121)  # the delay has passed: only the failure holds the send back
    uncertain_since = records.get(JOB)["uncertain_since"]
    brevo.script_log(failure)

    with pytest.raises(EmailLogUnavailable) as caught:
        deliver(mailer, records)

    assert caught.value.maybe_sent is False
    assert caught.value.retry_after == (7 if failure.status == 429 else None)
    assert len(brevo.sends) == 1 and brevo.accepted == []
    record = records.get(JOB)
    assert record["uncertain_since"] == uncertain_since and record["lease_until"] == "0"
    assert brevo.api_key not in str(caught.value)


def test_an_unreachable_list_fails_closed(redis_client: redis.Redis) -> None:
    with brevo_server.running() as server:
        mailer, records = rig(redis_client, server)
        lost_first_attempt(mailer, records, brevo_server.server_error(500), server)
    backdate(redis_client, records, 121)
    fresh, _ = rig(redis_client, server)  # no kept connection to the stopped server's last thread

    with pytest.raises(EmailLogUnavailable, match="could not be read"):
        deliver(fresh, records)
    assert records.get(JOB)["state"] == "sending" and records.get(JOB)["lease_until"] == "0"


def test_an_uncertain_email_older_than_the_list_covers_is_left_to_a_person(
        redis_client: redis.Redis, brevo: FakeBrevo) -> None:
    mailer, records = rig(redis_client, brevo)
    lost_first_attempt(mailer, records, brevo_server.server_error(500), brevo)
    backdate(redis_client, records, 30 * 86400)

    with pytest.raises(EmailUncertain, match="30 days"):
        deliver(mailer, records)

    assert len(brevo.sends) == 1 and brevo.log_queries == []
    record = records.get(JOB)
    assert record["uncertain_since"] != "" and record["lease_until"] == "0"


def test_the_outbox_sends_again_without_a_log(redis_client: redis.Redis, settings: Settings,
                                              tmp_path: Path) -> None:
    records = SentRecords(redis_client, settings)
    claim = records.claim(JOB)
    records.release(JOB, claim.owner, maybe_sent=True)

    delivery = deliver(OutboxMailer(tmp_path), records)

    assert delivery.outbox_path == str(tmp_path / "email.eml") and (tmp_path / "email.eml").exists()
    assert records.get(JOB)["state"] == "sent"


# The claim must still be ours right before the send.

def test_confirm_renews_a_live_claim_for_its_owner_only(redis_client: redis.Redis,
                                                        settings: Settings) -> None:
    records = SentRecords(redis_client, settings)
    claim = records.claim(JOB)
    before = float(records.get(JOB)["lease_until"])
    redis_client.hset(records.key(JOB), "lease_until", before - 5)

    assert records.confirm(JOB, claim.owner) is True
    assert float(records.get(JOB)["lease_until"]) > before - 5
    assert records.confirm(JOB, "someone-else") is False


def test_confirm_refuses_a_lease_that_ran_out_or_was_taken_over(redis_client: redis.Redis,
                                                                 settings: Settings) -> None:
    records = SentRecords(redis_client, settings)
    first = records.claim(JOB)
    redis_client.hset(records.key(JOB), "lease_until", time.time() - 1)
    assert records.confirm(JOB, first.owner) is False

    second = records.claim(JOB)

    assert second.status == "claimed" and second.maybe_sent_before
    assert records.confirm(JOB, first.owner) is False
    assert records.confirm(JOB, second.owner) is True
    records.mark_sent(JOB, via="brevo", message_id="<x@smtp-relay.mailin.fr>")
    assert records.confirm(JOB, second.owner) is False


def test_an_attempt_frozen_while_another_took_over_sends_nothing(redis_client: redis.Redis,
                                                                 brevo: FakeBrevo) -> None:
    mailer, records = rig(redis_client, brevo)
    taken: list[str] = []

    def freeze_past_the_lease() -> None:
        redis_client.hset(records.key(JOB), "lease_until", time.time() - 1)
        taken.append(records.claim(JOB).owner)

    with pytest.raises(EmailRetryable, match="taken over") as caught:
        deliver(mailer, records, guard=freeze_past_the_lease)

    assert caught.value.maybe_sent is False and brevo.sends == []
    record = records.get(JOB)
    assert record["owner"] == taken[0] and float(record["lease_until"]) > time.time()


def test_an_attempt_frozen_past_its_lease_sends_nothing_and_lets_go(redis_client: redis.Redis,
                                                                    brevo: FakeBrevo) -> None:
    mailer, records = rig(redis_client, brevo)

    def freeze_past_the_lease() -> None:
        redis_client.hset(records.key(JOB), "lease_until", time.time() - 1)

    with pytest.raises(EmailRetryable, match="ran out"):
        deliver(mailer, records, guard=freeze_past_the_lease)

    assert brevo.sends == []
    assert (records.get(JOB)["lease_until"], records.get(JOB)["uncertain_since"]) == ("0", "")
    assert deliver(mailer, records).message_id == brevo.accepted[0]["messageId"]
    assert brevo.log_queries == []  # nothing was uncertain: the released claim said so


def test_a_guard_that_raises_releases_the_claim_as_not_sent(redis_client: redis.Redis,
                                                            brevo: FakeBrevo) -> None:
    mailer, records = rig(redis_client, brevo)

    def not_my_job() -> None:
        raise RuntimeError("another process owns this job now")

    with pytest.raises(RuntimeError, match="owns this job"):
        deliver(mailer, records, guard=not_my_job)

    assert brevo.sends == []
    assert (records.get(JOB)["lease_until"], records.get(JOB)["uncertain_since"]) == ("0", "")


def test_the_guard_runs_after_the_list_and_right_before_the_send(redis_client: redis.Redis,
                                                                 brevo: FakeBrevo) -> None:
    mailer, records = rig(redis_client, brevo)
    lost_first_attempt(mailer, records, brevo_server.server_error(500), brevo)
    backdate(redis_client, records, 121)
    seen: list[tuple[int, int]] = []

    deliver(mailer, records, guard=lambda: seen.append((len(brevo.sends), len(brevo.log_queries))))

    assert seen == [(1, 1)] and len(brevo.sends) == 2


# BrevoLog against the list.

def test_the_list_is_asked_for_the_recipient_newest_first_and_matched_by_tag(brevo: FakeBrevo) -> None:
    brevo.log_email(ANA, ["gabay-feedback", email_tag("22222222-2222-5333-8444-555555555555")])
    client = BrevoClient(settings_for(brevo))
    client.send(message(), KEY)
    brevo.log_email(ANA, ["gabay-feedback"])

    found = BrevoLog(settings_for(brevo)).find(message(), KEY, since=time.time() - 60)

    assert found is not None and found.message_id == brevo.accepted[0]["messageId"]
    query = brevo.log_queries[0]
    assert query["path"] == "/v3/smtp/emails" and query["headers"]["api-key"] == brevo.api_key
    assert query["query"] == {"email": [ANA], "sort": ["desc"], "limit": ["500"], "offset": ["0"]}
    assert BrevoLog(settings_for(brevo)).find(message(), "33333333-2222-5333-8444-555555555555",
                                              since=time.time()) is None


def test_the_list_is_read_page_by_page(brevo: FakeBrevo) -> None:
    client = BrevoClient(settings_for(brevo))
    client.send(message(), KEY)
    for n in range(PAGE_SIZE + 100):  # newer emails to the same student, listed before ours
        brevo.log_email(ANA, ["gabay-feedback", f"gabay-email:other-{n}"])

    found = BrevoLog(settings_for(brevo)).find(message(), KEY, since=time.time() - 60)

    assert found is not None and found.message_id == brevo.accepted[0]["messageId"]
    assert [q["query"]["offset"] for q in brevo.log_queries] == [["0"], ["500"]]


def test_more_emails_to_the_recipient_than_the_pages_read_are_left_to_a_person(brevo: FakeBrevo) -> None:
    for n in range(MAX_PAGES * PAGE_SIZE + 1):
        brevo.log_email(ANA, [f"gabay-email:other-{n}"])

    with pytest.raises(EmailUncertain, match="check Brevo's transactional logs"):
        BrevoLog(settings_for(brevo)).find(message(), KEY, since=time.time() - 60)

    assert len(brevo.log_queries) == MAX_PAGES


@pytest.mark.parametrize(("body", "emails"), [
    ({}, 0), ({"count": 0}, 0), ({"count": None, "transactionalEmails": None}, 0),
    ({"count": 1, "transactionalEmails": [{"email": ANA, "messageId": "<a@b>"}]}, 1),
    ({"count": 1, "transactionalEmails": [{"email": ANA, "tags": None}]}, 1),
])
def test_documented_answers_are_read(body: dict[str, Any], emails: int) -> None:
    assert len(listed(body)[0]) == emails


@pytest.mark.parametrize("body", [
    None, [], "ok", {"count": 2}, {"count": "2", "transactionalEmails": []},
    {"transactionalEmails": {"email": ANA}}, {"transactionalEmails": ["x"]},
    {"transactionalEmails": [{"email": ANA, "tags": "gabay-feedback"}]},
])
def test_answers_in_another_shape_are_refused(body: Any) -> None:
    with pytest.raises(EmailLogUnavailable):
        listed(body)


# The fake's list must be faithful, or the tests above prove nothing.

def test_the_fake_list_answers_401_without_or_with_a_wrong_key(brevo: FakeBrevo) -> None:
    url = brevo.base_url + "/smtp/emails"
    no_key = requests.get(url, params={"email": ANA}, timeout=5)
    wrong = requests.get(url, params={"email": ANA}, headers={"api-key": "xkeysib-wrong"}, timeout=5)

    assert no_key.status_code == wrong.status_code == 401
    assert no_key.json() == {"message": "authentication not found in headers", "code": "unauthorized"}
    assert wrong.json() == {"code": "unauthorized", "message": "Key not found"}
    assert no_key.headers["x-sib-ratelimit-limit"] and "x-sib-ratelimit-reset" in no_key.headers


def test_the_fake_list_checks_its_filters(brevo: FakeBrevo) -> None:
    url, headers = brevo.base_url + "/smtp/emails", {"api-key": brevo.api_key}

    def answer(**params: str) -> tuple[int, str]:
        response = requests.get(url, params=params, headers=headers, timeout=5)
        return response.status_code, response.json().get("code", "")

    assert answer() == (400, "missing_parameter")
    assert answer(email=ANA, startDate="2026-01-01") == (400, "missing_parameter")
    assert answer(email=ANA, startDate="01/01/2026", endDate="2026-01-02") == (400, "invalid_parameter")
    assert answer(email=ANA, startDate="2026-01-01", endDate="2026-03-01") == (400, "invalid_parameter")
    assert answer(email=ANA, sort="newest") == (400, "invalid_parameter")
    assert answer(email=ANA, limit="-1") == (400, "invalid_parameter")
    assert answer(email=ANA, startDate="2026-01-01", endDate="2026-01-31") == (200, "")


def test_the_fake_lists_accepted_emails_in_brevos_shape(brevo: FakeBrevo) -> None:
    client = BrevoClient(settings_for(brevo))
    for n, to in enumerate([ANA, "ben@student.example", ANA]):
        client.send(message(to), f"11111111-2222-5333-8444-00000000000{n}")
    url, headers = brevo.base_url + "/smtp/emails", {"api-key": brevo.api_key}

    newest = requests.get(url, params={"email": ANA}, headers=headers, timeout=5).json()
    paged = requests.get(url, params={"email": "ANA@student.example", "limit": 1, "offset": 1, "sort": "asc"},
                         headers=headers, timeout=5).json()
    by_id = requests.get(url, params={"messageId": brevo.accepted[1]["messageId"]}, headers=headers,
                         timeout=5).json()

    assert newest["count"] == 2
    assert [e["messageId"] for e in newest["transactionalEmails"]] == [
        brevo.accepted[2]["messageId"], brevo.accepted[0]["messageId"]]
    item = newest["transactionalEmails"][0]
    assert set(item) == ITEM_FIELDS
    assert (item["email"], item["subject"], item["from"]) == (ANA, "Your feedback", "feedback@school.example")
    assert item["tags"] == ["gabay-feedback", email_tag("11111111-2222-5333-8444-000000000002")]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", item["date"])
    assert paged["count"] == 2 and [e["messageId"] for e in paged["transactionalEmails"]] == [
        brevo.accepted[2]["messageId"]]
    assert [e["email"] for e in by_id["transactionalEmails"]] == ["ben@student.example"]


def test_the_fake_scripts_the_list_apart_from_the_sends(brevo: FakeBrevo) -> None:
    brevo.script_log(brevo_server.rate_limited(reset=7))
    url, headers = brevo.base_url + "/smtp/emails", {"api-key": brevo.api_key}

    limited = requests.get(url, params={"email": ANA}, headers=headers, timeout=5)
    BrevoClient(settings_for(brevo)).send(message(), KEY)

    assert limited.status_code == 429 and limited.json()["code"] == "too_many_requests"
    assert limited.headers["x-sib-ratelimit-reset"] == "7"
    assert limited.headers["x-sib-ratelimit-remaining"] == "0"
    assert len(brevo.accepted) == 1


def test_the_fake_can_forget_idempotency_keys_and_lose_every_answer(brevo: FakeBrevo) -> None:
    brevo.deduplicate, brevo.lose_answers = False, True
    client = BrevoClient(settings_for(brevo))

    for _ in range(2):
        with pytest.raises(EmailRetryable):
            client.send(message(), KEY)

    assert len(brevo.accepted) == 2 and brevo.accepted[0]["messageId"] != brevo.accepted[1]["messageId"]
    assert len(brevo.listed) == 2
