"""Messages that wait for a time: one sorted set per queue, scored by due time on Redis's clock.

Deferred messages (a limit held them back), retries waiting out their backoff and ``send`` with a
delay all wait in ``keys.due(queue)``; their data stays in the queue's message hash. One Lua
script moves every due id of a batch of queues to the tail of its queue at once, and answers when
the next one is due. This replaces Dramatiq's delay queues for gabay's own messages, where each
consumer thread fetched delayed messages in order into its memory (at most threads x 1000) and
a message due now could wait behind thousands due later, or be lost from memory on a Redis error.

Deferring an in-flight delivery keeps its id: one script removes it from this process's acks set
and puts it in the due set, so a crash can neither lose nor duplicate it.

:class:`DueSet` also tells this process's promoter (:mod:`gabay.middleware.due_messages`) when
a message it scheduled is due sooner than the next one it knows of, so a short retry is moved
on time; other processes' messages are seen at the promoter's next turn (at most 1 s).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import redis

from gabay.keys import Keys

#: Longest delay Dramatiq allows for a message (7 days), in milliseconds.
MAX_DELAY_MS = 7 * 24 * 3600 * 1000
#: How many ids one promotion moves per queue (the promoter loops at once when a batch is full).
PROMOTE_BATCH = 500

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: messages, due. ARGV: id, data, delay ms. Returns the due time.
SCHEDULE_LUA = _NOW_MS + """
local at = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], at, ARGV[1])
return at
"""

# KEYS: acks, messages, due. ARGV: id, data, delay ms.
# Returns the due time, or -1 when this process no longer holds the delivery (nothing changed).
PARK_LUA = _NOW_MS + """
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return -1 end
local at = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], at, ARGV[1])
return at
"""

# KEYS: (due, queue) per queue, messages of each follow as a third key. ARGV: batch, then the wake
# channel of each queue (told when ids moved to it).
# Returns {moved, full (1 if a batch was full), next due ms or -1, now}.
PROMOTE_LUA = _NOW_MS + """
local batch, moved, full, next_due = tonumber(ARGV[1]), 0, 0, -1
for i = 1, #KEYS, 3 do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', now, 'LIMIT', 0, batch)
  local before = moved
  for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[i], id)
    if redis.call('HEXISTS', KEYS[i + 2], id) == 1 then
      redis.call('RPUSH', KEYS[i + 1], id)
      moved = moved + 1
    end
  end
  if moved > before then redis.call('PUBLISH', ARGV[(i + 2) / 3 + 1], '1') end
  if #ids == batch then full = 1 end
  local head = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
  if head[2] and (next_due < 0 or tonumber(head[2]) < next_due) then next_due = tonumber(head[2]) end
end
return {moved, full, next_due, now}
"""


@dataclass(frozen=True)
class Promotion:
    """Outcome of one promotion pass; times in milliseconds of the Redis clock."""

    moved: int
    full: bool  # some queue had more due ids than one batch: run again at once
    next_due: int | None
    now: int


class DueSet:
    """Schedule, park and promote the due messages of one Redis (see the module docstring)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.keys = keys
        self._schedule = client.register_script(SCHEDULE_LUA)
        self._park = client.register_script(PARK_LUA)
        self._promote = client.register_script(PROMOTE_LUA)
        #: Set when this process scheduled a message due before ``known_next`` (the promoter waits on it).
        self.sooner = threading.Event()
        self.known_next: int | None = None

    def schedule(self, queue_name: str, redis_id: str, data: bytes, delay_ms: int) -> int:
        """Store a new message to be moved to ``queue_name`` in ``delay_ms``; returns its due time."""
        due = int(self._schedule(keys=[self.keys.messages(queue_name), self.keys.due(queue_name)],
                                 args=[redis_id, data, _checked(delay_ms)]))
        self._tell(due)
        return due

    def park(self, worker_id: str, message: Any, delay_ms: int) -> bool:
        """Move this process's delivery ``message`` (its current data) to the due set.

        False when the delivery is no longer this process's (the recovery gave it to another).
        """
        queue_name, redis_id = message.queue_name, message.options["redis_message_id"]
        keys = [self.keys.acks(worker_id, queue_name), self.keys.messages(queue_name),
                self.keys.due(queue_name)]
        due = int(self._park(keys=keys, args=[redis_id, message.encode(), _checked(delay_ms)]))
        if due < 0:
            return False
        self._tell(due)
        return True

    def promote(self, queue_names: list[str], batch: int = PROMOTE_BATCH) -> Promotion:
        """Move every due id of these queues to the tail of its queue."""
        keys = [key for name in queue_names
                for key in (self.keys.due(name), self.keys.queue(name), self.keys.messages(name))]
        if not keys:
            return Promotion(0, False, None, 0)
        channels = [self.keys.wake(name) for name in queue_names]
        moved, full, next_due, now = self._promote(keys=keys, args=[batch, *channels])
        return Promotion(int(moved), bool(full), None if int(next_due) < 0 else int(next_due), int(now))

    def _tell(self, due: int) -> None:
        if self.known_next is None or due < self.known_next:
            self.known_next = due
            self.sooner.set()


def _checked(delay_ms: int) -> int:
    delay = max(int(delay_ms), 0)
    if delay > MAX_DELAY_MS:
        raise ValueError("Messages cannot be delayed for longer than 7 days.")
    return delay
