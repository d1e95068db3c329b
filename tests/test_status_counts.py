"""The status summary counts what waits apart: ready, held in a cap's waiting room, and delayed
(in the due set) with the reason, so that 22 messages deferred by a rate limit never read as
"waiting 0"."""

from __future__ import annotations

import json

import redis
from click.testing import CliRunner

from gabay.cli import main
from gabay.cluster.status_reader import RATE_LIMIT_RESERVATION, delay_reason
from gabay.middleware.rate_limit import RESERVATION_OPTION
from gabay.queues import FORM_RESPONSE
from gabay.settings import Settings
from tests.support import status_count_actors as actors
from tests.support.polling import wait_for

MODULES = ("tests.support.status_count_actors",)


def status_json() -> dict:
    result = CliRunner().invoke(main, ["status", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_rate_limited_retrying_capped_and_scheduled_messages_are_counted_apart(
    start_workers, redis_client: redis.Redis, settings: Settings
) -> None:
    start_workers(processes=1, threads=4, queues=(FORM_RESPONSE,), modules=MODULES)
    try:
        for n in range(5):
            actors.count_rate_limited.send(f"rate-{n}")
        for n in range(3):
            actors.count_capped.send(f"capped-{n}")
        actors.count_retrying.send("retry-0")
        actors.count_plain.send_with_options(args=("later",), delay=600_000)

        def settled() -> dict | None:
            feedback = status_json()["form_response_worker"]
            done = feedback["delayed"] == 6 and feedback["held"] == 2 and feedback["active"] == 1
            return feedback if done else None

        feedback = wait_for(settled, timeout=30,
                            message="4 deferred, 1 retry, 1 scheduled, 1 running, 2 held")
        assert feedback["delayed_by_reason"] == {"rate limit": 4, "retry": 1, "scheduled": 1}
        assert (feedback["ready"], feedback["held"], feedback["waiting"], feedback["active"]) == (0, 2, 2, 1)
        queue = status_json()["per_queue"][FORM_RESPONSE]
        assert (queue["waiting"], queue["held"], queue["delayed"]) == (0, 2, 6)
        assert queue["delayed_by_reason"] == {"rate limit": 4, "retry": 1, "scheduled": 1}

        text = CliRunner().invoke(main, ["status"]).stdout
        line = next(line for line in text.splitlines() if line.startswith("Form response"))
        assert ("active 1, waiting 2 (ready 0, held 2), delayed 6 (rate limit 4, retry 1, "
                "scheduled 1), completed") in line
    finally:
        redis_client.set(actors.gate_key(), 1)  # the held job ends, the worker stops at once


def test_an_idle_queue_shows_no_reasons_and_dramatiq_delay_queue_messages_are_named(
    broker, redis_client: redis.Redis, settings: Settings
) -> None:
    redis_client.hset(settings.keys.delayed_messages(FORM_RESPONSE), "legacy-id", b"{}")
    feedback = status_json()["form_response_worker"]
    assert feedback["delayed"] == 1 and feedback["delayed_by_reason"] == {"dramatiq delay queue": 1}
    assert status_json()["queues"]["delayed_by_reason"] == {}


def test_the_reason_is_read_from_the_options_and_unreadable_data_is_unknown() -> None:
    assert RATE_LIMIT_RESERVATION == RESERVATION_OPTION  # the two layers name the same option
    deferred_retry = {"options": {RESERVATION_OPTION: 5, "retries": 2}}
    assert delay_reason(json.dumps(deferred_retry).encode()) == "rate limit"
    assert delay_reason(json.dumps({"options": {"retries": 1}}).encode()) == "retry"
    assert delay_reason(json.dumps({"options": {}}).encode()) == "scheduled"
    assert delay_reason(None) == "unknown"  # promoted (or gone) between the two reads
    assert delay_reason(b"not json") == "unknown"
