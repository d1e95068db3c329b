"""Concurrency slots as leases in Redis, renewed while the job runs, and a waiting room.

One sorted set per capped actor holds its running jobs: member ``<start ms>:<worker id>/<uuid>``,
score = lease expiry (Redis ``TIME``, so hosts' clocks do not matter). The worker id in the member
lets the dead-worker recovery (:mod:`gabay.cluster.dead_workers`) give a killed process's slots
back in the same pass that puts its messages back, and the set of every cap's key (written by
acquire) tells that pass where to look. A thread in each worker process renews every lease it
holds every ``lease / 4``.

**The waiting room.** A message that finds the cap full (or finds others already waiting) does
not sleep in its thread nor come back at a guessed time: one script moves the delivery out of
this process's acks set into the actor's waiting room, a sorted set ranked by
:func:`rank` (when it started waiting, its priority, its tenant's lane). Whenever a slot frees
(a release, a lease that ran out, a dead process's slot given back) the script that sees it
hands the slot to the best-ranked waiter at once, cluster-wide: it reserves the slot for that
message (member ``handoff:<id>``, a lease of its own) and pushes the message to the head of its
queue, where the next fetch of any process takes it. The process that released the slot fetches
it at once (its consumer is nudged). A message that arrives with a reservation takes it; a
newcomer never jumps the waiting room. A waiting message is in Redis only, never in a worker's
memory, and uses no retry.

Bounds: the slot of a killed process (SIGKILL, OOM, lost host) returns when the recovery pass
judges the process dead (``HEARTBEAT_TIMEOUT`` + 1 s), or by itself at most ``lease`` after its
last renewal, whichever comes first (``lease`` is the heartbeat timeout too); a reservation
whose message does not arrive within ``lease`` lapses the same way, and every process's
maintenance pass (once a second) hands such freed slots on. A live holder keeps its lease however
long it runs; it loses it only if its process cannot reach Redis for a whole lease (frozen, or
cut off: it is then presumed dead, exactly like its message). Renewal never brings a lost lease
back (another job may hold that slot now): it reports it, and the job's next ownership check
(:mod:`gabay.middleware.ownership`) takes a free slot again or stops the job. A release that
Redis refuses is kept and tried again from the same thread (four times a second) until it
succeeds or the lease has run out by itself.

**Order: fair share, priorities, age.** The waiting room is start-time fair queueing. Every
message has a tenant (the teacher or school it is for; one shared lane without one) and each
tenant a lane: its next message ranks at ``max(V, lane + LANE_STEP / weight)``, ``V`` being the
lane position of the last message handed a slot. Backlogged tenants therefore take turns, one job
each per round: a tenant with one job waits at most one round (the number of backlogged tenants
x a job's start interval), whether another tenant has 10 or 10,000 jobs waiting; sharding a
backlog over 100 tenant keys buys 100 turns per round, not 10,000. A priority adds
``priority x LANE_STEP`` to the rank (:mod:`gabay.limits.priority`); an urgent message ranks at
``V`` minus that, ahead of every backlog, without using its tenant's lane. Whatever its rank, a
message that has waited ``AGE_LIMIT_MS`` (10 minutes) goes next: nothing starves.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis

from gabay.keys import MESSAGES_SUFFIX, Keys
from gabay.limits.priority import priority_name

logger = logging.getLogger(__name__)

#: Run time assumed before the first job of an actor finished (milliseconds).
DEFAULT_RUN_MS = 1000
#: How often a refused release is tried again (seconds).
RETRY_EVERY = 0.25

_NOW_MS = """
local now = tonumber(ARGV[#ARGV])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

#: Prefix of a slot reserved for a waiting message by a hand-off (then its redis message id).
HANDOFF_PREFIX = "handoff:"
#: One job's step on a tenant's lane, in virtual milliseconds (see :func:`rank`).
LANE_STEP = 1000
#: A message waiting longer than this (wall clock, ms) is served next, whatever its rank.
AGE_LIMIT_MS = 10 * 60 * 1000

# hand_off(holders, stats, waiting, since, index, limit, lease, now): give every free slot to
# the next waiters; returns how many were handed. Members are
# '<queue key>|<id>|<offset>|<priority>|<tenant>'; the stats hash counts the waiters per
# priority ('waiting-priority:<p>') and per tenant ('waiting-tenant:<t>') for the status.
_HAND_OFF = f"""
local function hand_off(holders, stats, waiting, since, index, limit, lease, now)
  redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
  local free, handed = limit - redis.call('ZCARD', holders), 0
  while free > 0 do
    local member, score
    local oldest = redis.call('ZRANGE', since, 0, 0, 'WITHSCORES')
    if not oldest[1] then break end
    if tonumber(oldest[2]) <= now - {AGE_LIMIT_MS} then
      member = oldest[1]
      redis.call('ZREM', waiting, member)
    else
      local head = redis.call('ZPOPMIN', waiting)
      if not head[1] then break end
      member, score = head[1], tonumber(head[2])
    end
    redis.call('ZREM', since, member)
    local queue, id, offset, priority, tenant =
      string.match(member, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
    for _, field in ipairs({{'waiting-priority:' .. priority, 'waiting-tenant:' .. tenant}}) do
      if redis.call('HINCRBY', stats, field, -1) <= 0 then redis.call('HDEL', stats, field) end
    end
    if score then
      local lane = score - tonumber(offset)
      if lane > (tonumber(redis.call('HGET', stats, 'vtime')) or 0) then
        redis.call('HSET', stats, 'vtime', string.format('%.0f', lane))
      end
    end
    if redis.call('HEXISTS', queue .. '{MESSAGES_SUFFIX}', id) == 1 then
      redis.call('ZADD', holders, now + lease, '{HANDOFF_PREFIX}' .. id)
      redis.call('PEXPIRE', holders, lease * 2)
      redis.call('LPUSH', queue, id)
      free, handed = free - 1, handed + 1
    end
  end
  if redis.call('ZCARD', waiting) == 0 then redis.call('HDEL', index, waiting) end
  return handed
end
"""

# KEYS: holders, every cap's holders key, waiting. ARGV: owner, limit, lease ms, redis id,
# now ms or '' (tests). Returns {acquired, now, member}.
ACQUIRE_LUA = _NOW_MS + f"""
local limit, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local reserved = redis.call('ZREM', KEYS[1], '{HANDOFF_PREFIX}' .. ARGV[4]) == 1
if reserved or (redis.call('ZCARD', KEYS[1]) < limit and redis.call('ZCARD', KEYS[3]) == 0) then
  local member = string.format('%.0f', now) .. ':' .. ARGV[1]
  redis.call('ZADD', KEYS[1], now + lease, member)
  redis.call('PEXPIRE', KEYS[1], lease * 2)
  redis.call('SADD', KEYS[2], KEYS[1])
  return {{1, now, member}}
end
return {{0, now, ''}}
"""

# KEYS: acks, messages, waiting, tenants, holders, stats, waiting index, queue, waiting since.
# ARGV: id, data, limit, lease ms, tenant, weight, priority offset, index entry, priority name,
# now or ''.
# Returns {parked (1, or -1: not this process's delivery), rank, handed}.
PARK_LUA = _NOW_MS + _HAND_OFF + f"""
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return {{-1, 0, 0}} end
local limit, lease, offset = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[7])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local v = tonumber(redis.call('HGET', KEYS[6], 'vtime'))
if not v then
  v = now
  redis.call('HSET', KEYS[6], 'vtime', string.format('%.0f', v))
end
if redis.call('PTTL', KEYS[6]) < 86400000 then redis.call('PEXPIRE', KEYS[6], 86400000) end
local lane = v
if offset >= 0 then
  local last = tonumber(redis.call('HGET', KEYS[4], ARGV[5]))
  if last then lane = math.max(v, last + {LANE_STEP} / tonumber(ARGV[6])) end
  redis.call('HSET', KEYS[4], ARGV[5], string.format('%.3f', lane))
  redis.call('PEXPIRE', KEYS[4], 86400000)
end
local member = KEYS[8] .. '|' .. ARGV[1] .. '|' .. ARGV[7] .. '|' .. ARGV[9] .. '|' .. ARGV[5]
redis.call('HINCRBY', KEYS[6], 'waiting-priority:' .. ARGV[9], 1)
redis.call('HINCRBY', KEYS[6], 'waiting-tenant:' .. ARGV[5], 1)
redis.call('ZADD', KEYS[3], lane + offset, member)
redis.call('ZADD', KEYS[9], now, member)
redis.call('HSET', KEYS[7], KEYS[3], ARGV[8])
return {{1, lane + offset, hand_off(KEYS[5], KEYS[6], KEYS[3], KEYS[9], KEYS[7], limit, lease, now)}}
"""

# KEYS: holders, stats, waiting, waiting index, waiting since. ARGV: member, run ms or '' (not a
# run), limit, lease ms, now ms or '' (Redis TIME). Returns {removed, handed}.
RELEASE_LUA = _NOW_MS + _HAND_OFF + """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
local run = tonumber(ARGV[2])
if run then
  local avg = tonumber(redis.call('HGET', KEYS[2], 'avg'))
  avg = avg and (avg * 0.8 + run * 0.2) or run
  redis.call('HSET', KEYS[2], 'avg', string.format('%.0f', avg))
  if redis.call('PTTL', KEYS[2]) < 86400000 then redis.call('PEXPIRE', KEYS[2], 86400000) end
end
return {removed, hand_off(KEYS[1], KEYS[2], KEYS[3], KEYS[5], KEYS[4], tonumber(ARGV[3]),
                          tonumber(ARGV[4]), now)}
"""

# KEYS: waiting index. ARGV: lease ms, '' (now). For every cap with waiters, hand free slots on
# (lapsed leases and reservations, slots given back by the recovery). Returns how many.
MAINTAIN_LUA = _NOW_MS + _HAND_OFF + """
local entries, handed = redis.call('HGETALL', KEYS[1]), 0
for i = 1, #entries, 2 do
  local holders, stats, since, limit = string.match(entries[i + 1], '^(%S+) (%S+) (%S+) (%d+)')
  if holders then
    handed = handed + hand_off(holders, stats, entries[i], since, KEYS[1], tonumber(limit),
                               tonumber(ARGV[1]), now)
  end
end
return handed
"""

# KEYS: holders (one per member). ARGV: lease ms, members..., '' (now: Redis TIME).
# A lease that expired (or was given back by the recovery of a presumed-dead process) is lost.
RENEW_LUA = _NOW_MS + """
local lease, lost = tonumber(ARGV[1]), {}
for i, key in ipairs(KEYS) do
  local expiry = tonumber(redis.call('ZSCORE', key, ARGV[i + 1]))
  if expiry and expiry > now then
    redis.call('ZADD', key, now + lease, ARGV[i + 1])
    redis.call('PEXPIRE', key, lease * 2)
  else
    redis.call('ZREM', key, ARGV[i + 1])
    table.insert(lost, ARGV[i + 1])
  end
end
return lost
"""

# KEYS: holders. ARGV: member, limit, lease ms, '' (now: Redis TIME).
# 1: the lease is held (renewed); 2: it was lost and a free slot was taken again; 0: cap full.
RECLAIM_LUA = _NOW_MS + """
local lease = tonumber(ARGV[3])
local expiry = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if expiry and expiry > now then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  return 1
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], lease * 2)
  return 2
end
return 0
"""


@dataclass(frozen=True)
class Attempt:
    """Outcome of one acquire; ``now`` in milliseconds of the Redis clock."""

    acquired: bool
    now: int
    member: str  # the lease, when acquired


@dataclass(frozen=True)
class Waiter:
    """What the waiting room needs to know of a message that waits for a slot."""

    tenant: str = ""  # the tenant's id for fair share ('' is one lane for all without one)
    weight: float = 1.0  # the tenant's share: weight 2 takes two turns per round
    priority: int = 0  # see gabay.limits.priority (negative: sooner)


@dataclass(frozen=True)
class Parked:
    """Outcome of one park: ``parked`` False when the delivery was no longer this process's."""

    parked: bool
    rank: int
    handed: int  # slots handed to waiters in the same step (maybe to this very message)


class Leases:
    """Acquire, renew and release cap slots of one worker process; park and hand off waiters."""

    def __init__(self, client: redis.Redis, keys: Keys, lease_ms: int,
                 renew: bool = True, worker_id: str = "") -> None:
        self.client = client
        self.worker_id = worker_id
        self.renewing = renew  # False only in tests that play a dead holder or a fake clock
        self.redis_keys = keys
        self.lease_ms = lease_ms
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._park = client.register_script(PARK_LUA)
        self._release = client.register_script(RELEASE_LUA)
        self._maintain = client.register_script(MAINTAIN_LUA)
        self._renew = client.register_script(RENEW_LUA)
        self._reclaim = client.register_script(RECLAIM_LUA)
        self._held: dict[str, str] = {}  # member -> holders key
        self._releases: list[tuple[float, list[str], list[object]]] = []  # (give up at, keys, args)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def keys(self, name: str) -> list[str]:
        """holders, stats, waiting room, the waiting index and waiting-since, in the scripts' order."""
        keys = self.redis_keys
        return [keys.cap_holders(name), keys.cap_stats(name), keys.cap_waiting(name),
                keys.cap_waiting_index, keys.cap_waiting_since(name)]

    def acquire(self, name: str, limit: int, redis_id: str = "", now: int | None = None) -> Attempt:
        """Take a slot: the one handed to ``redis_id``, or a free one when nobody waits."""
        holders, _, waiting, _, _ = self.keys(name)
        owner = f"{self.worker_id}/{uuid.uuid4().hex}"
        args = [owner, limit, self.lease_ms, redis_id, "" if now is None else now]
        acquired, at_now, member = self._acquire(
            keys=[holders, self.redis_keys.cap_index, waiting], args=args)
        attempt = Attempt(bool(acquired), int(at_now), _text(member))
        if attempt.acquired:
            with self._lock:
                self._held[attempt.member] = holders
            self._ensure_renewing()
        return attempt

    def park(self, name: str, limit: int, message: Any, waiter: Waiter,
             now: int | None = None) -> Parked:
        """Move this process's delivery ``message`` into the waiting room of actor ``name``."""
        holders, stats, waiting, index, since = self.keys(name)
        keys = self.redis_keys
        queue = message.queue_name
        redis_keys = [keys.acks(self.worker_id, queue), keys.messages(queue), waiting,
                      keys.cap_tenants(name), holders, stats, index, keys.queue(queue), since]
        args: list[object] = [
            message.options["redis_message_id"], message.encode(), limit, self.lease_ms,
            waiter.tenant.replace("|", "/"), max(waiter.weight, 0.01), waiter.priority * LANE_STEP,
            f"{holders} {stats} {since} {limit} {queue}", priority_name(waiter.priority),
            "" if now is None else now]
        parked, rank, handed = self._park(keys=redis_keys, args=args)
        return Parked(int(parked) > 0, int(rank), int(handed))

    def release(self, name: str, member: str, run_ms: int | None, limit: int,
                now: int | None = None) -> int:
        """Give the slot back; ``run_ms`` (a finished run) feeds the average run time.

        Returns how many waiters the freed slot went to (0 or 1; 0 also when Redis refused the
        release, which is then tried again).
        """
        keys = self.keys(name)
        args: list[object] = [member, "" if run_ms is None else run_ms, limit, self.lease_ms,
                              "" if now is None else now]
        with self._lock:
            self._held.pop(member, None)
            try:
                _, handed = self._release(keys=keys, args=args)
                return int(handed)
            except redis.RedisError as exc:
                logger.warning("Releasing cap slot %s failed (%s); trying again.", member,
                               type(exc).__name__)
                self._releases.append((time.monotonic() + self.lease_ms / 1000, keys, args))
        self._ensure_renewing(even_in_tests=True)
        return 0

    def maintain(self, now: int | None = None) -> int:
        """Hand every free slot of every cap with waiters on; returns how many were handed."""
        return int(self._maintain(keys=[self.redis_keys.cap_waiting_index],
                                  args=[self.lease_ms, "" if now is None else now]))

    def retry_releases(self) -> int:
        """Release again what Redis refused; returns how many are still pending."""
        with self._lock:
            pending, self._releases = self._releases, []
            now = time.monotonic()
            for index, (give_up_at, keys, args) in enumerate(pending):
                if give_up_at <= now:
                    continue  # the lease ran out: Redis dropped the slot by itself
                try:
                    self._release(keys=keys, args=args)
                except redis.RedisError:
                    self._releases = pending[index:]
                    break
            return len(self._releases)

    def renew(self) -> list[str]:
        """Extend every lease this process holds; returns the ones found lost (not re-added)."""
        with self._lock:
            if not self._held:
                return []
            members = list(self._held)
            keys = [self._held[m] for m in members]
            lost = self._renew(keys=keys, args=[self.lease_ms, *members, ""])
        return [_text(m) for m in lost]

    def reclaim(self, name: str, member: str, limit: int) -> bool:
        """Is lease ``member`` still held (renewed now), or could a free slot be taken again?

        False: the lease is lost and the cap is full; the job must not go on.
        """
        outcome = int(self._reclaim(keys=[self.keys(name)[0]], args=[member, limit, self.lease_ms, ""]))
        if outcome == 2:
            logger.warning("Lease %s had been lost; took a free slot again.", member)
        return outcome > 0

    def close(self) -> None:
        """Stop renewing and give back every slot still held (the process is going away)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread, self._stop = None, threading.Event()
        with self._lock:
            held, self._held = dict(self._held), {}
        for member, holders in held.items():
            self.client.zrem(holders, member)

    def _ensure_renewing(self, even_in_tests: bool = False) -> None:
        if self._thread is None and (self.renewing or even_in_tests):
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, args=(self._stop,),
                                                    name="gabay-leases", daemon=True)
                    self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        renew_every = self.lease_ms / 4000
        renewed_at = time.monotonic()
        while not stop.wait(min(renew_every, RETRY_EVERY) if self._releases else renew_every):
            try:
                self.retry_releases()
                if self.renewing and time.monotonic() - renewed_at >= renew_every * 0.9:
                    renewed_at = time.monotonic()
                    for member in self.renew():
                        logger.warning("Lease %s was lost while its job ran (this process was "
                                       "frozen or cut off from Redis for a whole lease).", member)
            except redis.RedisError as exc:
                logger.warning("Renewing concurrency leases failed: %s", exc)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
