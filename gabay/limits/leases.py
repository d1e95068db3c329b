"""Concurrency slots as leases in Redis, renewed while the job runs.

One sorted set per capped actor holds its running jobs: member ``<start ms>:<worker id>/<uuid>``,
score = lease expiry (Redis ``TIME``, so hosts' clocks do not matter). The worker id in the member
lets the dead-worker recovery (:mod:`gabay.cluster.dead_workers`) give a killed process's slots
back in the same pass that puts its messages back, and the set of every cap's key (written by
acquire) tells that pass where to look. Acquire is one Lua script: drop
expired leases, take a slot if fewer than ``limit`` remain, else estimate when a slot is likely
(see below). A thread in each worker process renews every lease it holds every ``lease / 4``;
release removes the member and wakes one waiter (a push on a short list that waiters block on).

Bounds: the slot of a killed process (SIGKILL, OOM, lost host) returns when the recovery pass
judges the process dead (``HEARTBEAT_TIMEOUT`` + 1 s), or by itself at most ``lease`` after its
last renewal, whichever comes first (``lease`` is the heartbeat timeout too). A live holder keeps
its lease however long it runs; it loses it only if its process cannot reach Redis for a whole
lease (frozen, or cut off: it is then presumed dead, exactly like its message). Renewal never
brings a lost lease back (another job may hold that slot now): it reports it, and the job's next
ownership check (:mod:`gabay.middleware.ownership`) takes a free slot again or stops the job.
A release that Redis refuses is kept and tried
again from the same thread (four times a second) until it succeeds or the lease has run out by
itself: a slot never stays taken longer than its lease because Redis had a bad moment.

Estimate for a full cap: the cap frees a slot about every ``d / limit`` ms, ``d`` being the
average run time (an exponential average updated at each release, raised to the age of the oldest
running job when that is longer). Every deferred message takes the next point of a per-actor
cursor advancing by that step, so a backlog of 10,000 comes back spread at the pace slots free,
not all at once; the last stretch is waited in the worker thread for a release wake-up.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass

import redis

from gabay.keys import Keys

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

# KEYS: holders, stats, every cap's holders key. ARGV: owner, limit, lease ms, reserve (0/1),
# now ms or '' (tests).
ACQUIRE_LUA = _NOW_MS + f"""
local limit, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < limit then
  local member = string.format('%.0f', now) .. ':' .. ARGV[1]
  redis.call('ZADD', KEYS[1], now + lease, member)
  redis.call('PEXPIRE', KEYS[1], lease * 2)
  redis.call('SADD', KEYS[3], KEYS[1])
  return {{1, now, now, member}}
end
local run = tonumber(redis.call('HGET', KEYS[2], 'avg')) or {DEFAULT_RUN_MS}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local started = tonumber(string.match(m, '^(%d+):'))
  if started and now - started > run then run = now - started end
end
local step = math.max(math.floor(run / limit), 1)
local at = math.max(tonumber(redis.call('HGET', KEYS[2], 'cursor')) or 0, now) + step
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[2], 'cursor', string.format('%.0f', at))
  redis.call('PEXPIRE', KEYS[2], at - now + 86400000)
end
return {{0, now, at, ''}}
"""

# KEYS: holders, stats, wake. ARGV: member, run ms or '' (not a run), limit, lease ms.
RELEASE_LUA = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
local run = tonumber(ARGV[2])
if run then
  local avg = tonumber(redis.call('HGET', KEYS[2], 'avg'))
  avg = avg and (avg * 0.8 + run * 0.2) or run
  redis.call('HSET', KEYS[2], 'avg', string.format('%.0f', avg))
  if redis.call('PTTL', KEYS[2]) < 86400000 then redis.call('PEXPIRE', KEYS[2], 86400000) end
end
if removed == 1 then
  redis.call('LPUSH', KEYS[3], '1')
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
  redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[4]))
end
return removed
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
    """Outcome of one acquire; times in milliseconds of the Redis clock."""

    acquired: bool
    now: int
    at: int  # when a slot is expected (the reservation if one was taken)
    member: str  # the lease, when acquired

    @property
    def wait_ms(self) -> int:
        return max(self.at - self.now, 0)


class Leases:
    """Acquire, renew and release cap slots of one worker process."""

    def __init__(self, client: redis.Redis, keys: Keys, lease_ms: int,
                 renew: bool = True, worker_id: str = "") -> None:
        self.client = client
        self.worker_id = worker_id
        self.renewing = renew  # False only in tests that play a dead holder or a fake clock
        self.redis_keys = keys
        self.lease_ms = lease_ms
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._release = client.register_script(RELEASE_LUA)
        self._renew = client.register_script(RENEW_LUA)
        self._reclaim = client.register_script(RECLAIM_LUA)
        self._held: dict[str, str] = {}  # member -> holders key
        self._releases: list[tuple[float, list[str], list[object]]] = []  # (give up at, keys, args)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def keys(self, name: str) -> list[str]:
        keys = self.redis_keys
        return [keys.cap_holders(name), keys.cap_stats(name), keys.cap_wake(name)]

    def acquire(self, name: str, limit: int, reserve: bool, now: int | None = None) -> Attempt:
        """Take a slot, or say when one is expected (and reserve that time if ``reserve``)."""
        holders, stats, _ = self.keys(name)
        owner = f"{self.worker_id}/{uuid.uuid4().hex}"
        args = [owner, limit, self.lease_ms, int(reserve), "" if now is None else now]
        acquired, at_now, at, member = self._acquire(
            keys=[holders, stats, self.redis_keys.cap_index], args=args)
        attempt = Attempt(bool(acquired), int(at_now), int(at), _text(member))
        if attempt.acquired:
            with self._lock:
                self._held[attempt.member] = holders
            self._ensure_renewing()
        return attempt

    def release(self, name: str, member: str, run_ms: int | None, limit: int) -> None:
        """Give the slot back; ``run_ms`` (a finished run) feeds the average run time."""
        keys = self.keys(name)
        args: list[object] = [member, "" if run_ms is None else run_ms, limit, self.lease_ms]
        with self._lock:
            self._held.pop(member, None)
            try:
                self._release(keys=keys, args=args)
                return
            except redis.RedisError as exc:
                logger.warning("Releasing cap slot %s failed (%s); trying again.", member,
                               type(exc).__name__)
                self._releases.append((time.monotonic() + self.lease_ms / 1000, keys, args))
        self._ensure_renewing(even_in_tests=True)

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

    def wait_for_release(self, name: str, timeout_ms: float) -> bool:
        """Block until a slot of ``name`` is released (True) or ``timeout_ms`` passes (False)."""
        timeout = max(timeout_ms / 1000, 0.01)
        return self.client.blpop([self.keys(name)[2]], timeout=timeout) is not None

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
