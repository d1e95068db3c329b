"""The broker dispatches signals to its middleware as Dramatiq does, only faster, and fails closed.

A gate (a ``before_process_message`` hook) that fails with anything but a Middleware error holds
the message back: it goes back to its queue instead of running without its slot or its start.
"""

from __future__ import annotations

import dramatiq
import pytest
import redis
from dramatiq import Message, Middleware
from dramatiq.middleware import SkipMessage

from gabay.broker import GabayBroker, GateUnavailable, build_broker
from gabay.settings import Settings


class Recorder(Middleware):
    def __init__(self, name: str, calls: list[str], *, fails: bool = False) -> None:
        self.name, self.calls, self.fails = name, calls, fails

    def before_process_message(self, broker: object, message: Message) -> None:
        self.calls.append(f"before {self.name}")
        if self.fails:
            raise RuntimeError("a bug in a middleware")

    def after_process_message(self, broker: object, message: Message, *, result: object = None,
                              exception: BaseException | None = None) -> None:
        self.calls.append(f"after {self.name}")


class Skipper(Middleware):
    def before_process_message(self, broker: object, message: Message) -> None:
        raise SkipMessage("held back")


MESSAGE = Message(queue_name="q", actor_name="a", args=(), kwargs={},
                  options={"redis_message_id": "r-1"})


def broker_with_actor(settings: Settings, client: redis.Redis) -> GabayBroker:
    """A gabay broker on which actor ``a`` of queue ``q`` is declared."""
    broker = build_broker(settings, client)
    dramatiq.Actor(lambda: None, actor_name="a", queue_name="q", priority=0, broker=broker, options={})
    return broker


def test_hooks_run_in_middleware_order_before_and_in_reverse_after_also_when_added_later(
    redis_client: redis.Redis, settings: Settings
) -> None:
    broker = broker_with_actor(settings, redis_client)
    calls: list[str] = []
    broker.add_middleware(Recorder("one", calls))
    broker.emit_before("process_message", MESSAGE)
    broker.add_middleware(Recorder("two", calls))
    broker.emit_before("process_message", MESSAGE)
    broker.emit_after("process_message", MESSAGE, result=None)
    assert calls == ["before one", "before one", "before two", "after two", "after one"]


def test_a_gate_that_cannot_decide_puts_the_message_back_instead_of_running_it(
    redis_client: redis.Redis, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    broker = broker_with_actor(settings, redis_client)
    keys = settings.keys
    redis_client.sadd(keys.acks(broker.broker_id, "q"), "r-1")  # as if this process fetched it
    redis_client.hset(keys.messages("q"), "r-1", MESSAGE.encode())
    calls: list[str] = []
    for recorder in (Recorder("one", calls), Recorder("two", calls, fails=True), Recorder("three", calls)):
        broker.add_middleware(recorder)

    with pytest.raises(GateUnavailable):  # a SkipMessage: the worker does not run the actor
        broker.emit_before("process_message", MESSAGE)

    assert calls == ["before one", "before two"]  # no later gate is asked
    assert redis_client.lrange(keys.queue("q"), 0, -1) == [b"r-1"]  # back in its queue
    assert redis_client.scard(keys.acks(broker.broker_id, "q")) == 0
    assert broker.intake.forget(MESSAGE)  # and this delivery's ack is skipped
    assert "Recorder could not decide on message" in caplog.text


def test_a_skip_raised_by_a_hook_reaches_the_worker(redis_client: redis.Redis, settings: Settings) -> None:
    broker = broker_with_actor(settings, redis_client)
    calls: list[str] = []
    broker.add_middleware(Skipper())
    broker.add_middleware(Recorder("later", calls))
    with pytest.raises(SkipMessage):
        broker.emit_before("process_message", MESSAGE)
    assert calls == []
