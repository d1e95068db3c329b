"""The Redis broker of gabay: Dramatiq's RedisBroker with our middleware and bounded recovery.

Dramatiq recovers the messages of a dead worker only when a random "maintenance" pass (0.1 % of
commands) happens on that queue after the worker's heartbeat is older than 60 s: in practice
minutes to half an hour. :class:`GabayBroker` turns the random pass off and lets the Recovery
middleware run it on every consumed queue once per second, with a shorter heartbeat timeout, so
a killed worker's messages are back in their queue within ``HEARTBEAT_TIMEOUT`` + 1 s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis
from dramatiq.middleware import Middleware, MiddlewareError

from gabay.cluster.connection import connect
from gabay.cluster.intake import GabayConsumer, Intake
from gabay.middleware import build_middleware
from gabay.settings import Settings

logger = logging.getLogger(__name__)


class GabayBroker(RedisBroker):
    """RedisBroker whose dead-worker maintenance runs on a clock instead of by chance.

    Its consumers ask the process's :class:`~gabay.cluster.intake.Intake` before fetching: a paused
    queue or a draining process fetches nothing (see :mod:`gabay.cluster.intake`). The middleware
    are added once the broker exists, because they need its worker id and recovery pass.

    Signals are dispatched only to the middleware that implement them: Dramatiq calls every
    middleware's hook for every signal, four signals per message, and most of the sixteen hooks
    are the inherited no-ops. The order and the error handling are Dramatiq's.
    """

    def __init__(self, *, settings: Settings, client: redis.Redis, **kwargs: object) -> None:
        self.settings = settings
        self._hook_snapshot: list[Middleware] = []
        self._hook_cache: dict[str, list[tuple[Middleware, Callable[..., Any]]]] = {}
        super().__init__(
            client=client,
            namespace=settings.keys.namespace,
            heartbeat_timeout=int(settings.heartbeat_timeout * 1000),
            maintenance_chance=0,
            middleware=[],
            **kwargs,
        )
        self.intake = Intake(self.client, settings.keys, self.broker_id)
        for middleware in build_middleware(settings, self.client, self.intake, self.run_maintenance):
            self.add_middleware(middleware)

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        name = "before_" + signal
        for middleware, hook in self._hooks(name):
            try:
                hook(self, *args, **kwargs)
            except MiddlewareError:
                raise
            except Exception:
                self.logger.critical("Unexpected failure in %s of %r.", name, middleware, exc_info=True)

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        name = "after_" + signal
        for middleware, hook in reversed(self._hooks(name)):
            try:
                hook(self, *args, **kwargs)
            except Exception:
                self.logger.critical("Unexpected failure in %s of %r.", name, middleware, exc_info=True)

    def _hooks(self, name: str) -> list[tuple[Middleware, Callable[..., Any]]]:
        """The middleware that implement hook ``name`` (not just inherit the no-op), in order.

        Rebuilt whenever the middleware list changed (compared element by element, by identity
        first: cheap next to sixteen calls).
        """
        if self._hook_snapshot != self.middleware:
            self._hook_cache = {}
            self._hook_snapshot = list(self.middleware)
        hooks = self._hook_cache.get(name)
        if hooks is None:
            inherited = getattr(Middleware, name, None)
            hooks = self._hook_cache[name] = [
                (m, hook) for m in self.middleware
                if (hook := getattr(m, name, None)) is not None
                and (getattr(type(m), name, None) is not inherited or name in vars(m))
            ]
        return hooks

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> GabayConsumer:
        """A consumer of ``queue_name`` that asks this process's intake before every fetch."""
        return GabayConsumer(self, queue_name, prefetch, timeout, intake=self.intake)

    def run_maintenance(self, queue_name: str) -> None:
        """Heartbeat, then requeue the unacked messages of dead workers on ``queue_name``."""
        self.scripts["dispatch"](
            args=[
                "qsize",
                current_millis(),
                queue_name,
                self.broker_id,
                self.heartbeat_timeout,
                self.dead_message_ttl,
                1,
                self._max_unpack_size(),
            ],
            keys=[self.namespace],
        )


def build_broker(settings: Settings, client: redis.Redis | None = None) -> GabayBroker:
    """A broker for these settings (the client defaults to the resolved Redis)."""
    return GabayBroker(settings=settings, client=client or connect(settings))


def setup_broker(settings: Settings) -> GabayBroker:
    """Build the broker and make it Dramatiq's global broker, before any actor is declared."""
    broker = build_broker(settings)
    dramatiq.set_broker(broker)
    return broker
