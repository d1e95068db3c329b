"""The broker dispatches signals to its middleware exactly as Dramatiq does, only faster."""

from __future__ import annotations

import pytest
import redis
from dramatiq import Message, Middleware
from dramatiq.middleware import SkipMessage

from gabay.broker import build_broker
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


MESSAGE = Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={})


def test_hooks_run_in_middleware_order_before_and_in_reverse_after_also_when_added_later(
    redis_client: redis.Redis, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    broker = build_broker(settings, redis_client)
    calls: list[str] = []
    broker.add_middleware(Recorder("one", calls))
    broker.emit_before("process_message", MESSAGE)
    broker.add_middleware(Recorder("two", calls, fails=True))
    broker.add_middleware(Recorder("three", calls))
    broker.emit_before("process_message", MESSAGE)
    broker.emit_after("process_message", MESSAGE, result=None)
    assert calls == ["before one",
                     "before one", "before two", "before three",  # a failing hook stops nothing
                     "after three", "after two", "after one"]
    assert "Unexpected failure in before_process_message" in caplog.text


def test_a_skip_raised_by_a_hook_reaches_the_worker(redis_client: redis.Redis, settings: Settings) -> None:
    broker = build_broker(settings, redis_client)
    calls: list[str] = []
    broker.add_middleware(Skipper())
    broker.add_middleware(Recorder("later", calls))
    with pytest.raises(SkipMessage):
        broker.emit_before("process_message", MESSAGE)
    assert calls == []
