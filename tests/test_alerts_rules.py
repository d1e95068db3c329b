"""Alert rules against real Redis state, incidents that fire once and resolve, dedupe, cooldown.

Every rule reads what gabay and Dramatiq really write: dead letters through Dramatiq's own nack,
queues filled by Dramatiq's enqueue, the worker registry, LLM totals through the job store.
Alerts are received by a fake webhook on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from gabay.alerts.missed_schedules import report_missed_schedule, report_schedule_ran
from gabay.alerts.service import AlertService, build_alerting
from gabay.cluster.registry import WorkerInfo, WorkerRegistry
from gabay.jobs import JobStore, LLMCall
from gabay.settings import load_settings
from tests.fakes import webhook_server
from tests.fakes.webhook_server import FakeReceiver

STUDENT_EMAIL = "maria.santos@student.example"


@pytest.fixture
def hook() -> Iterator[FakeReceiver]:
    with webhook_server.webhook() as receiver:
        yield receiver


def service(client: redis.Redis, hook: FakeReceiver, **overrides: Any) -> AlertService:
    """Alerting as a worker process builds it, sending to the fake webhook only."""
    overrides.setdefault("alert_disabled_rules", "")
    settings = load_settings(alert_webhook_url=hook.url, alert_http_retries=0, **overrides)
    return build_alerting(settings, client)


def plain_broker(client: redis.Redis) -> RedisBroker:
    """Dramatiq's own RedisBroker on gabay's namespace: it writes Dramatiq's real layout."""
    return RedisBroker(client=client, namespace=load_settings().keys.namespace, middleware=[])


def enqueue(broker: RedisBroker, queue: str, count: int, *, age_s: float = 0.0) -> list[Message]:
    broker.declare_queue(queue)
    sent = []
    for i in range(count):
        message: Message[Any] = Message(queue_name=queue, actor_name="draft_questions",
                          args=({"student": {"email": STUDENT_EMAIL}, "n": i},), kwargs={}, options={},
                          message_timestamp=int((time.time() - age_s) * 1000))
        sent.append(broker.enqueue(message))
    return sent


def events(hook: FakeReceiver, rule: str | None = None) -> list[tuple[str, str]]:
    return [e for e in hook.events() if rule is None or e[1] == rule]


def bodies(hook: FakeReceiver, rule: str) -> list[dict[str, Any]]:
    return [r["json"] for r in hook.accepted() if r["json"]["rule"] == rule]


def test_dead_letter_fires_from_dramatiqs_layout_and_resolves(redis_client: redis.Redis,
                                                            hook: FakeReceiver) -> None:
    broker = plain_broker(redis_client)
    [message] = enqueue(broker, "generation", 1)
    consumer = broker.consume("generation", prefetch=1, timeout=100)
    fetched = next(m for m in iter(consumer) if m is not None)
    consumer.nack(fetched)  # Dramatiq's own dead-lettering: .XQ scored by time, .XQ.msgs
    consumer.close()
    alerts = service(redis_client, hook, alert_disabled_rules="no_consumer")

    alerts.tick()  # pending for a second: the worker's failure reason follows the nack
    assert events(hook) == []
    def fired() -> bool:
        alerts.tick()
        return bool(events(hook))

    _wait(fired, 5)
    assert events(hook) == [("firing", "dead_letter")]
    [body] = bodies(hook, "dead_letter")
    assert body["subject"] == "generation" and body["details"]["count"] == 1
    assert body["details"]["latest"] == [{"message_id": message.message_id, "actor": "draft_questions",
                                          "error": ""}]
    assert STUDENT_EMAIL not in json.dumps(hook.accepted()[0]["json"])

    alerts.tick()  # still dead-lettered: the incident is open, nothing new is sent
    assert len(hook.accepted()) == 1

    keys = load_settings().keys  # requeued from the dashboard: it leaves the dead-letter set
    redis_client.zrem(keys.dead_letters("generation"), fetched.options["redis_message_id"])
    alerts.tick()
    assert events(hook) == [("firing", "dead_letter"), ("resolved", "dead_letter")]
    assert alerts.incidents.incidents(alerts.evaluator.rule_names) == []


def test_queue_depth_age_and_no_consumer_fire_and_resolve(redis_client: redis.Redis,
                                                          hook: FakeReceiver) -> None:
    broker = plain_broker(redis_client)
    enqueue(broker, "validation", 4, age_s=120)
    alerts = service(redis_client, hook, alert_queue_depth=3, alert_queue_age=60,
                     alert_no_consumer_after=0)

    alerts.tick()
    assert sorted(events(hook)) == [("firing", "no_consumer"), ("firing", "queue_age"),
                                    ("firing", "queue_depth")]
    depth = bodies(hook, "queue_depth")[0]
    assert depth["subject"] == "validation" and depth["details"]["waiting"] == 4
    assert bodies(hook, "no_consumer")[0]["severity"] == "critical"

    # a live worker consumes the queue now: no_consumer resolves, the backlog stays
    now = time.time()
    WorkerRegistry(redis_client, load_settings()).publish(WorkerInfo(
        worker_id="w1", host="h", pid=1, queues=["validation"], threads=1, version="t",
        started_at=now, last_seen=now))
    alerts.tick()
    assert events(hook)[3:] == [("resolved", "no_consumer")]

    redis_client.delete(load_settings().keys.queue("validation"))  # the backlog was taken
    alerts.tick()
    assert sorted(events(hook)[4:]) == [("resolved", "queue_age"), ("resolved", "queue_depth")]


def test_no_consumer_waits_for_its_hold_time(redis_client: redis.Redis, hook: FakeReceiver) -> None:
    enqueue(plain_broker(redis_client), "retrieval", 1)
    alerts = service(redis_client, hook, alert_no_consumer_after=0.5)
    alerts.tick()
    [incident] = alerts.incidents.incidents(alerts.evaluator.rule_names)
    assert (incident.rule, incident.state) == ("no_consumer", "pending") and hook.accepted() == []

    def fired() -> bool:
        alerts.tick()
        return bool(events(hook, "no_consumer"))

    _wait(fired, 5)


def test_failure_rate_counts_runs_of_every_process(redis_client: redis.Redis, hook: FakeReceiver) -> None:
    worker_a = service(redis_client, hook, alert_failure_min_runs=10, alert_failure_rate=0.2)
    worker_b = service(redis_client, hook, alert_failure_min_runs=10, alert_failure_rate=0.2)
    for i in range(6):
        worker_a.runs.record("validate_questions", ok=i % 2 == 0)
        worker_b.runs.record("validate_questions", ok=True)
    worker_a.tick(evaluate=False)   # publishes its counts
    worker_b.tick()                  # publishes its own and evaluates: 3 of 12 failed = 25 %
    [body] = bodies(hook, "failure_rate")
    assert body["subject"] == "validate_questions"
    assert body["details"] == {"actor": "validate_questions", "runs": 12, "failed": 3,
                                    "rate": 0.25, "threshold": 0.2, "window_min": 10.0}
    for _ in range(4):
        worker_a.runs.record("validate_questions", ok=True)
    worker_a.tick()                  # 3 of 16 = 19 %
    assert events(hook, "failure_rate") == [("firing", "failure_rate"), ("resolved", "failure_rate")]


def test_llm_spend_over_the_daily_budget(redis_client: redis.Redis, hook: FakeReceiver) -> None:
    settings = load_settings()
    jobs = JobStore(redis_client, settings)
    jobs.create("questions", "job-1")
    jobs.add_call("job-1", LLMCall(stage="generation", provider="deepseek", model="deepseek-flash",
                                   cost_usd=5.0))  # spent before today's first evaluation
    alerts = service(redis_client, hook, alert_llm_daily_budget_usd=1.0)
    alerts.tick()
    assert events(hook) == []
    for _ in range(3):
        jobs.add_call("job-1", LLMCall(stage="validation", provider="openai", model="gpt-4o-mini",
                                       cost_usd=0.4))
    alerts.tick()
    [body] = bodies(hook, "llm_spend")
    assert body["details"]["spent_usd"] == pytest.approx(1.2)
    assert "$1.20" in body["summary"]


def test_missed_schedule_fires_until_it_runs(redis_client: redis.Redis, hook: FakeReceiver) -> None:
    keys = load_settings().keys
    alerts = service(redis_client, hook)
    report_missed_schedule(redis_client, keys, "nightly-digest", "2026-12-03T02:00Z")
    alerts.tick()
    [body] = bodies(hook, "missed_schedule")
    assert body["subject"] == "nightly-digest" and body["details"]["slot"] == "2026-12-03T02:00Z"
    report_missed_schedule(redis_client, keys, "nightly-digest", "2026-12-04T02:00Z")
    alerts.tick()  # still the same incident
    report_schedule_ran(redis_client, keys, "nightly-digest")
    alerts.tick()
    assert events(hook) == [("firing", "missed_schedule"), ("resolved", "missed_schedule")]


def test_two_evaluators_on_one_redis_send_each_alert_once(redis_client: redis.Redis,
                                                          hook: FakeReceiver) -> None:
    keys = load_settings().keys
    evaluators = [service(redis_client, hook) for _ in range(4)]
    report_missed_schedule(redis_client, keys, "hourly-sync", "12:00")

    def race() -> None:
        start = threading.Barrier(len(evaluators))

        def run(alerts: AlertService) -> None:
            start.wait()
            alerts.tick()

        threads = [threading.Thread(target=run, args=(a,)) for a in evaluators]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)

    for _ in range(3):
        race()
    assert events(hook) == [("firing", "missed_schedule")]
    report_schedule_ran(redis_client, keys, "hourly-sync")
    for _ in range(3):
        race()
    assert events(hook) == [("firing", "missed_schedule"), ("resolved", "missed_schedule")]


def test_cooldown_keeps_a_flapping_condition_quiet(redis_client: redis.Redis, hook: FakeReceiver) -> None:
    keys = load_settings().keys
    alerts = service(redis_client, hook, alert_cooldown=600)
    for _ in range(2):  # fires, resolves, fires again within the cooldown, resolves
        report_missed_schedule(redis_client, keys, "flaky", "slot")
        alerts.tick()
        report_schedule_ran(redis_client, keys, "flaky")
        alerts.tick()
    assert events(hook) == [("firing", "missed_schedule"), ("resolved", "missed_schedule")]

    redis_client.delete(keys.alert_cooldown("missed_schedule", "flaky"))  # the cooldown is over
    report_missed_schedule(redis_client, keys, "flaky", "slot")
    alerts.tick()
    assert events(hook)[-1] == ("firing", "missed_schedule")


def test_a_disabled_rule_does_not_fire_and_resolves_its_incident(redis_client: redis.Redis,
                                                                 hook: FakeReceiver) -> None:
    keys = load_settings().keys
    report_missed_schedule(redis_client, keys, "weekly", "w49")
    service(redis_client, hook).tick()
    service(redis_client, hook, alert_disabled_rules="missed_schedule").tick()
    assert events(hook) == [("firing", "missed_schedule"), ("resolved", "missed_schedule")]


def test_no_false_resolve_when_redis_cannot_be_read(redis_client: redis.Redis, hook: FakeReceiver) -> None:
    keys = load_settings().keys
    report_missed_schedule(redis_client, keys, "nightly", "n1")
    service(redis_client, hook).tick()
    dead = redis.Redis(host="127.0.0.1", port=_closed_port(), socket_connect_timeout=0.5)
    cut_off = service(dead, hook, alert_redis_down_after=0)
    report_schedule_ran(redis_client, keys, "nightly")  # cleared, but this process cannot see it
    cut_off.tick()
    assert [e for e in events(hook) if e[0] == "resolved"] == []
    assert events(hook, "redis_unreachable") == [("firing", "redis_unreachable")]
    [incident] = service(redis_client, hook).incidents.incidents(("missed_schedule",))
    assert incident.state == "firing"


def _closed_port() -> int:
    from tests.chaos.redis_server import free_port
    return free_port()


def _wait(predicate: Any, timeout: float) -> None:
    from tests.support.polling import wait_for
    wait_for(predicate, timeout=timeout, interval=0.05)


def test_a_stale_observation_does_not_undo_a_newer_one(redis_client: redis.Redis) -> None:
    from gabay.alerts.incidents import IncidentStore
    from gabay.alerts.notification import Finding

    store = IncidentStore(redis_client, load_settings().keys, cooldown_s=0, lease_s=60)
    finding = Finding("generation", "queue 'generation' has 5000 waiting messages")
    claim = store.observe("queue_depth", "warning", "generation", finding, now_ms=10_000)
    assert claim is not None and claim.notification.state == "firing"
    store.finish(claim, {"webhook"}, complete=True, now_ms=10_001)
    # a slow pass whose reads began before the incident opened says "all clear": ignored
    assert store.observe("queue_depth", "warning", "generation", None, now_ms=9_000) is None
    [incident] = store.incidents(("queue_depth",))
    assert (incident.state, incident.sent) == ("firing", "firing")
    resolved = store.observe("queue_depth", "warning", "generation", None, now_ms=11_000)
    assert resolved is not None and resolved.notification.state == "resolved"


@pytest.mark.parametrize(("name", "value", "problem"), [
    ("ALERT_DISABLED_RULES", "queue_depth,typo", "unknown rule(s) typo"),
    ("ALERT_EMAIL_TO", "ops@gabay.example,Ops Team", "address 2 is not a plain email address"),
])
def test_alert_settings_are_checked_at_start_up(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                                problem: str) -> None:
    from gabay.errors import ConfigError

    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        load_settings()
