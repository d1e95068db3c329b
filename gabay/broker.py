"""The Redis broker of gabay: Dramatiq's RedisBroker with our middleware and bounded recovery.

Dramatiq recovers the messages of a dead worker only when a random "maintenance" pass (0.1 % of
commands) happens on that queue after the worker's heartbeat is older than 60 s: in practice
minutes to half an hour, and it finds them with a ``KEYS`` scan of the whole keyspace.
:class:`GabayBroker` turns the random pass off; the Recovery middleware runs gabay's own pass
(:mod:`gabay.cluster.dead_workers`, no scan) once per second, with a shorter heartbeat timeout,
so a killed worker's messages are back in their queue within ``HEARTBEAT_TIMEOUT`` + 1 s.

Heartbeats and the dead-worker judgement use the Redis server's clock
(:class:`~gabay.cluster.clock.RedisClock`), so a host whose clock is off cannot declare live
workers dead.

The gates fail closed: when a ``before_process_message`` hook fails with anything but a
Middleware error (Redis refusing a limit's script, a timeout, a bug), the message does not run.
It goes back to the head of its queue (kept in memory until Redis takes it, see
:mod:`gabay.cluster.intake`) without spending a retry, and the worker thread pauses a little,
longer while the failures go on. Dramatiq itself would log the error and run the message.

Two changes to ``enqueue``, both keeping Dramatiq's message format and ``actor.send()``:
a message sent with a delay (a retry's backoff, a deferral, ``send_with_options(delay=...)``)
waits in gabay's due set (:mod:`gabay.cluster.due`) instead of Dramatiq's delay queue, so that a
message due now never waits behind messages due later; and an urgent or high priority message
(:mod:`gabay.limits.priority`) goes to the head of its queue.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, NoReturn

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware, MiddlewareError

from gabay.cluster.claim_check import CLAIM_OPTION, ClaimCheck
from gabay.cluster.clock import RedisClock
from gabay.cluster.connection import connect
from gabay.cluster.consumer import GabayConsumer
from gabay.cluster.dead_workers import DeadWorkers
from gabay.cluster.due import DueSet
from gabay.cluster.intake import Intake, PutBack
from gabay.limits.priority import PRIORITY_OPTION, parse_priority
from gabay.middleware import build_middleware
from gabay.middleware.ownership import Ownership
from gabay.settings import Settings
from gabay.tracing import build_tracing

logger = logging.getLogger(__name__)

#: Pause of a worker thread after a gate failed: doubles per failure in a row, up to the maximum.
GATE_BACKOFF = 0.05
GATE_BACKOFF_MAX = 2.0


# KEYS: queue, messages. ARGV: id, data, the queue's wake channel.
PUSH_HEAD_LUA = """
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if redis.call('LPUSH', KEYS[1], ARGV[1]) == 1 then redis.call('PUBLISH', ARGV[3], '1') end
"""

# Dramatiq's "enqueue" dispatch command, plus a wake-up of idle consumers when the queue was
# empty (Dramatiq's dispatch also records the sender in its heartbeats: a producer is no worker).
# KEYS: queue, messages. ARGV: id, data, the queue's wake channel.
ENQUEUE_LUA = """
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if redis.call('RPUSH', KEYS[1], ARGV[1]) == 1 then redis.call('PUBLISH', ARGV[3], '1') end
"""


class GateUnavailable(PutBack):
    """A gate could not decide; the message went back to its queue without spending a retry."""


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
        self.clock = RedisClock(self.client)
        self.due = DueSet(self.client, settings.keys)
        self._push_head = self.client.register_script(PUSH_HEAD_LUA)
        self._enqueue = self.client.register_script(ENQUEUE_LUA)
        self.intake = Intake(self.client, settings.keys, self.broker_id)
        self.dead_workers = DeadWorkers(self.client, settings.keys, self.clock, self.heartbeat_timeout,
                                        self.dead_message_ttl)
        self.gate_failures = 0  # in a row, in this process
        self.claim_check = ClaimCheck(self.client, settings.keys, settings.claim_check_ttl)
        self.tracing = build_tracing(settings)
        for middleware in build_middleware(settings, self.client, self.intake, self.dead_workers,
                                           self.due, self.tracing):
            self.add_middleware(middleware)
        #: What the actors call before a side effect: does this process still own the job?
        self.ownership = next(m for m in self.middleware if isinstance(m, Ownership))

    def enqueue(self, message: dramatiq.Message, *, delay: int | None = None) -> dramatiq.Message:
        """Dramatiq's enqueue, with delayed messages in the due set and urgent ones at the head."""
        checked = self._check_in(message)
        if checked is not message:  # the payload is stored; the message carries its reference
            try:
                return self.enqueue(checked, delay=delay)
            except BaseException:
                self.claim_check.discard(checked)
                raise
        priority = message.options.get(PRIORITY_OPTION)
        urgent = priority is not None and parse_priority(priority) < 0  # ValueError: bad priority
        if delay is None and not urgent:
            return super().enqueue(message)
        message = message.copy(options={"redis_message_id": str(uuid.uuid4())})
        message.options.pop("eta", None)
        queue_name, redis_id = message.queue_name, message.options["redis_message_id"]
        self.emit_before("enqueue", message, delay)
        if delay is not None:
            self.due.schedule(queue_name, redis_id, message.encode(), delay)
        else:
            self._push_head(keys=[self.settings.keys.queue(queue_name),
                                  self.settings.keys.messages(queue_name)],
                            args=[redis_id, message.encode(), self.settings.keys.wake(queue_name)])
        self.emit_after("enqueue", message, delay)
        return message

    def do_enqueue(self, queue_name: str, redis_id: str, data: bytes) -> None:
        """Dramatiq's enqueue command, telling idle consumers when the queue was empty."""
        keys = self.settings.keys
        self._enqueue(keys=[keys.queue(queue_name), keys.messages(queue_name)],
                      args=[redis_id, data, keys.wake(queue_name)])

    def _check_in(self, message: dramatiq.Message) -> dramatiq.Message:
        """The message with its payload claim-checked (see gabay.cluster.claim_check), when its
        actor is declared with ``claim_check=``, else the message itself; it carries the trace
        context of the sender when tracing is on."""
        message = self.tracing.inject(message)
        actor = self.actors.get(message.actor_name)
        subjects = actor.options.get(CLAIM_OPTION) if actor is not None else None
        return message if subjects is None else self.claim_check.check_in(message, subjects)

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        name = "before_" + signal
        for middleware, hook in self._hooks(name):
            try:
                hook(self, *args, **kwargs)
            except MiddlewareError:
                raise
            except Exception as exc:
                if signal == "process_message":
                    self._hold_back(middleware, args[0], exc)
                self.logger.critical("Unexpected failure in %s of %r.", name, middleware, exc_info=True)
        if self.gate_failures and signal == "process_message":
            self.gate_failures = 0

    def _hold_back(self, middleware: Middleware, message: Any, exc: Exception) -> NoReturn:
        """Fail closed: the gate could not decide, so the message goes back instead of running."""
        logger.warning("%s could not decide on message %s (%s: %s); it goes back to its queue "
                       "without spending a retry.", type(middleware).__name__, message.message_id,
                       type(exc).__name__, exc)
        self.intake.put_back_or_keep(message.queue_name, [message])
        self.gate_failures += 1
        time.sleep(min(GATE_BACKOFF * 2 ** min(self.gate_failures - 1, 10), GATE_BACKOFF_MAX))
        raise GateUnavailable(f"{type(middleware).__name__} could not decide") from exc

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        name = "after_" + signal
        for middleware, hook in reversed(self._hooks(name)):
            try:
                hook(self, *args, **kwargs)
            except redis.RedisError as exc:
                if signal == "process_message" and kwargs.get("exception") is not None:
                    self._keep_failed_run(middleware, args[0], exc)
                else:
                    self.logger.critical("Unexpected failure in %s of %r.", name, middleware,
                                         exc_info=True)
            except Exception:
                self.logger.critical("Unexpected failure in %s of %r.", name, middleware, exc_info=True)

    def _keep_failed_run(self, middleware: Middleware, message: Any, exc: Exception) -> None:
        """A run failed and Redis refused what follows (its retry): it goes back instead of lost.

        Dramatiq would acknowledge the message with no retry scheduled. Put back (or kept until
        Redis answers) as it is now, with the retry count Retries already raised, it runs again
        at once (the backoff is not waited) and the failed attempt counts against max_retries.
        """
        logger.warning("%s could not schedule what follows the failed run of message %s (%s: %s); "
                       "it goes back to its queue to run again.", type(middleware).__name__,
                       message.message_id, type(exc).__name__, exc)
        self.intake.put_back_or_keep(message.queue_name, [message], updated=True)

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
        return GabayConsumer(self, queue_name, prefetch, timeout, intake=self.intake,
                             idle_ms=round(self.settings.idle_fetch_interval * 1000))

    def _dispatch(self, command: str) -> Callable[..., Any]:
        """Dramatiq's dispatch of one command, on Redis's clock, never with its maintenance."""
        script = self.scripts["dispatch"]

        def do_dispatch(queue_name: str, *args: Any) -> Any:
            return script(args=[
                command, self.clock.now_ms(), queue_name, self.broker_id, self.heartbeat_timeout,
                self.dead_message_ttl, 0, self._max_unpack_size(), *args,
            ], keys=[self.namespace])

        return do_dispatch


def build_broker(settings: Settings, client: redis.Redis | None = None) -> GabayBroker:
    """A broker for these settings (the client defaults to the resolved Redis)."""
    return GabayBroker(settings=settings, client=client or connect(settings))


def setup_broker(settings: Settings) -> GabayBroker:
    """Build the broker and make it Dramatiq's global broker, before any actor is declared."""
    broker = build_broker(settings)
    dramatiq.set_broker(broker)
    return broker
