"""What a worker process may take from Redis, and putting back what it took but did not start.

One :class:`Intake` per broker (that is, per worker process). The Pause and Draining middleware
set it; :class:`gabay.cluster.consumer.GabayConsumer` reads it before every fetch, so a paused
queue (cluster-wide) or a draining process (this process only) fetches nothing instead of
fetching and re-deferring.

Putting back is one Lua call per queue: each id is removed from this process's acks set and, if
that removal happened and the message data still exists, pushed to the **head** of its queue (it
was at the head when fetched). The id is remembered so that Dramatiq's later ack or nack of the
same delivery is skipped: that ack would otherwise delete the message data of a message that now
waits in the queue, or that another process is running. Nothing is copied, so the retry count and
the message id are unchanged, and a crash at any point leaves the id either in this process's acks
set (recovered after ``HEARTBEAT_TIMEOUT``) or in the queue.

When Redis refuses the put-back (down, or refusing writes), :meth:`Intake.put_back_or_keep` keeps
the deliveries in memory and :meth:`Intake.retry_kept` (called every second by the Recovery
middleware) puts them back as soon as Redis answers: they are neither run nor acked meanwhile,
and they stay in this process's acks set, so even a crash loses nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import redis
from dramatiq.middleware import SkipMessage

from gabay.cluster.pause_flags import PauseState
from gabay.keys import DELAY_SUFFIX, Keys

logger = logging.getLogger(__name__)

#: ARGV: the queue's wake channel, then the ids. Idle consumers are told when any went back.
PUT_BACK = """
local n = 0
for i = #ARGV, 2, -1 do
    if redis.call("srem", KEYS[1], ARGV[i]) > 0 and redis.call("hexists", KEYS[3], ARGV[i]) > 0 then
        redis.call("lpush", KEYS[2], ARGV[i])
        n = n + 1
    end
end
if n > 0 then redis.call("publish", ARGV[1], "1") end
return n
"""

#: PUT_BACK with the message data replaced: ARGV holds the channel, then (id, encoded message) pairs.
PUT_BACK_UPDATED = """
local n = 0
for i = #ARGV - 1, 2, -2 do
    local id = ARGV[i]
    if redis.call("srem", KEYS[1], id) > 0 and redis.call("hexists", KEYS[3], id) > 0 then
        redis.call("hset", KEYS[3], id, ARGV[i + 1])
        redis.call("lpush", KEYS[2], id)
        n = n + 1
    end
end
if n > 0 then redis.call("publish", ARGV[1], "1") end
return n
"""


class PutBack(SkipMessage):
    """Raised from ``before_process_message`` after the delivery was put back in its queue."""


class OwnershipLost(SkipMessage):
    """Raised inside a job whose process no longer owns it (see :mod:`gabay.middleware.ownership`).

    A ``SkipMessage``: Dramatiq neither retries it nor counts it as a failure, and the job's own
    failure handling must let it through unrecorded (the job belongs to another run now).
    """


#: What a job calls before a side effect it guards; raises OwnershipLost when it must stop.
Guard = Callable[[], None]


def always_owned() -> None:
    """The guard outside a worker, where nothing can take a job away."""


class Intake:
    """Process-local: may this process fetch and start, and which deliveries did it put back."""

    def __init__(self, client: redis.Redis, keys: Keys, worker_id: str) -> None:
        self.keys = keys
        self.worker_id = worker_id
        self.draining = threading.Event()
        self.pause_state: PauseState | None = None  # set by the Pause middleware
        self._put_back: set[str] = set()
        self._deferred: set[str] = set()  # the part of _put_back that went to the due set
        self._nudges: dict[str, list[threading.Event]] = {}  # queue -> its consumers' wake-ups
        #: Set while this process hears the queues' wake channels (gabay.cluster.wakeups): its
        #: idle consumers then wait long, since a push to an empty queue wakes them.
        self.wakeups_live = threading.Event()
        self._signals: dict[str, threading.Event] = {}  # cluster state name -> its readers' wake-up
        # (queue, messages, updated) that Redis refused to take back
        self._kept: list[tuple[str, list[Any], bool]] = []
        self._lock = threading.Lock()
        self._script = client.register_script(PUT_BACK)
        self._updating_script = client.register_script(PUT_BACK_UPDATED)

    def may_fetch(self, queue_name: str) -> bool:
        """Delay queues keep handing due messages over while paused; only starts are paused."""
        if self.draining.is_set():
            return False
        return queue_name.endswith(DELAY_SUFFIX) or not self.is_paused(queue_name)

    def nudge_event(self, queue_name: str) -> threading.Event:
        """A consumer's wake-up: set when a message was put at the head of ``queue_name`` here, or
        when its wake channel says the queue is no longer empty."""
        event = threading.Event()
        with self._lock:
            self._nudges.setdefault(queue_name, []).append(event)
        return event

    def nudge(self, queue_name: str | None = None) -> None:
        """Wake this process's idle consumers of ``queue_name`` (of every queue for None)."""
        with self._lock:
            events = [e for name, found in self._nudges.items()
                      if queue_name is None or name == queue_name for e in found]
        for event in events:
            event.set()

    def signal_event(self, name: str) -> threading.Event:
        """Set when cluster state ``name`` changed (its wake channel said so): read it again now."""
        with self._lock:
            return self._signals.setdefault(name, threading.Event())

    def signal(self, name: str | None = None) -> None:
        """Wake the reader of cluster state ``name`` (of every state for None)."""
        with self._lock:
            events = [e for found, e in self._signals.items() if name is None or found == name]
        for event in events:
            event.set()

    def is_paused(self, queue_name: str) -> bool:
        return self.pause_state is not None and self.pause_state.is_paused(queue_name)

    def put_back(self, queue_name: str, messages: Iterable[Any], *, acked_later: bool = True,
                 updated: bool = False) -> int:
        """Return ``messages`` (fetched from ``queue_name`` by this process) to the head of it.

        ``acked_later``: a worker thread will still post-process these deliveries; remember them
        so that its ack/nack is skipped. ``updated``: store each message as it is now (its options
        changed, e.g. a retry counted) instead of as it was fetched. Returns how many ids went back.
        """
        messages = list(messages)
        ids = [m.options["redis_message_id"] for m in messages]
        if not ids:
            return 0
        if acked_later:
            with self._lock:
                self._put_back.update(ids)
        keys = [self.keys.acks(self.worker_id, queue_name), self.keys.queue(queue_name),
                self.keys.messages(queue_name)]
        script, args = self._script, [self.keys.wake(queue_name), *ids]
        if updated:
            script, args = self._updating_script, [self.keys.wake(queue_name)] + [
                x for m in messages for x in (m.options["redis_message_id"], m.encode())]
        try:
            return int(script(keys=keys, args=args))
        except redis.RedisError:
            # Not put back: the deliveries stay in this process's acks set and must be acked.
            if acked_later:
                with self._lock:
                    self._put_back.difference_update(ids)
            raise

    def put_back_or_keep(self, queue_name: str, messages: list[Any], *, updated: bool = False) -> bool:
        """Put back now (True), or keep them to put back once Redis answers (False).

        Either way their ack or nack is skipped: they must run again, in any process.
        ``updated`` as in :meth:`put_back`.
        """
        try:
            self.put_back(queue_name, messages, updated=updated)
            return True
        except redis.RedisError as exc:
            with self._lock:
                self._put_back.update(m.options["redis_message_id"] for m in messages)
                self._kept.append((queue_name, list(messages), updated))
            logger.warning("Could not put back %d message(s) of %s (%s); kept to put back when "
                           "Redis answers.", len(messages), queue_name, type(exc).__name__)
            return False

    def leave_if_draining(self, message: Any) -> None:
        """A message that waits at a gate when the drain begins goes back at once, unstarted."""
        if self.draining.is_set():
            self.put_back_or_keep(message.queue_name, [message])
            raise PutBack("this worker process is shutting down")

    def retry_kept(self) -> int:
        """Put back what Redis refused before; returns how many went back now."""
        with self._lock:
            kept, self._kept = self._kept, []
        returned = 0
        for index, (queue_name, messages, updated) in enumerate(kept):
            try:
                returned += self.put_back(queue_name, messages, acked_later=False, updated=updated)
            except redis.RedisError:
                with self._lock:
                    self._kept[:0] = kept[index:]
                break
        if returned:
            logger.info("Put back %d kept message(s) now that Redis answers.", returned)
        return returned

    @property
    def kept(self) -> int:
        """How many deliveries wait in memory to be put back."""
        with self._lock:
            return sum(len(messages) for _, messages, _ in self._kept)

    def disown(self, message: Any, *, deferred: bool = False) -> None:
        """This delivery was given to another process, or ``deferred`` to the due set: its ack or
        nack here must not reach Redis."""
        with self._lock:
            self._put_back.add(message.options["redis_message_id"])
            if deferred:
                self._deferred.add(message.options["redis_message_id"])

    def was_deferred(self, message: Any) -> bool:
        return message.options.get("redis_message_id") in self._deferred

    def was_put_back(self, message: Any) -> bool:
        return message.options.get("redis_message_id") in self._put_back

    def forget(self, message: Any) -> bool:
        """True (once) if this delivery was put back: its ack/nack must not reach Redis."""
        with self._lock:
            redis_id = message.options.get("redis_message_id")
            if redis_id in self._put_back:
                self._put_back.discard(redis_id)
                self._deferred.discard(redis_id)
                return True
            return False
