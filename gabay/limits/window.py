"""Exact sliding-window rate limit with reservations: the arithmetic and its Redis form.

The guarantee: no window of ``W`` (any start instant, microsecond clock) holds more than ``N``
starts of an actor, cluster-wide. Equivalently, any ``N + 1`` consecutive starts span at least
``W``. The clock is Redis ``TIME``, so hosts' clocks do not matter.

Two small sorted sets per actor, each trimmed to its ``N`` latest entries (memory is O(N), not
O(backlog)):

* ``starts`` - the real start times. **Only this decides whether a start is allowed**: a start at
  ``now`` is allowed iff the N-th latest start is at or before ``now - W``. That check and the
  record happen in one Lua script, so concurrent workers cannot both take the last place.
* ``schedule`` - reservations. A message that may not start now reserves the earliest time
  ``t >= now`` with ``t >= (N-th latest reservation) + W`` and is told to come back at ``t``.
  Reservations obey the same window rule, so a backlog is spread over the future at exactly the
  limit's pace (no thundering herd), and each message learns its own time.

A reservation is a promise to try, not a start. A message that comes back (on time, late, or
after a pause or a cap held it) tries to start with the ``starts`` check above; if that fails, it
waits for ``max(reservation, earliest allowed start)`` without taking a new reservation, as long
as that wait is within the caller's ``patience`` (what it is willing to wait in its thread). A
message whose reserved time has passed and that would have to wait longer reserves again like a
new one, so a crowd returning late (after a pause, say) is spread again instead of colliding at
the same instant. A lost message leaves one stale reservation that falls out of the last N
entries: it costs at most one unused place, once, and nothing leaks.

New messages always go through the schedule, so they never take a place promised to a waiting
one. :func:`decide` is the reference implementation in Python (unit-tested with a frozen clock);
``TRY_START_LUA`` is the same algorithm, executed atomically by Redis, and a test checks that
both agree step by step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis

from gabay.keys import Keys
from gabay.limits.rates import Rate


@dataclass(frozen=True)
class Decision:
    """Outcome of one attempt to start; times in microseconds of the limiter's clock."""

    started: bool
    now: int
    at: int  # the start time when started, else when to try again
    reserved: int  # the message's reservation (to carry to the next attempt)

    @property
    def wait_ms(self) -> float:
        return max(self.at - self.now, 0) / 1000


@dataclass
class WindowState:
    """In-memory mirror of the two sorted sets (start member -> time, message id -> time)."""

    starts: dict[str, int] = field(default_factory=dict)
    schedule: dict[str, int] = field(default_factory=dict)


def now_us() -> int:
    return time.time_ns() // 1000


def earliest(times: dict[str, int], limit: int, window_us: int, now: int) -> int:
    """The earliest instant >= ``now`` where one more entry keeps every window at ``limit``."""
    if len(times) < limit:
        return now
    nth_latest = sorted(times.values())[-limit]
    return max(now, nth_latest + window_us)


def _trim(times: dict[str, int], limit: int) -> None:
    for member, _ in sorted(times.items(), key=lambda kv: (kv[1], kv[0]))[:-limit]:
        del times[member]


def decide(state: WindowState, limit: int, window_us: int, member: str,
           reserved: int | None = None, now: int | None = None,
           patience_us: int | None = None) -> Decision:
    """Try to start ``member`` at ``now``; record the start or return when to try again."""
    now = now_us() if now is None else now
    allowed_at = earliest(state.starts, limit, window_us, now)
    if reserved is not None:
        at = max(reserved, allowed_at)
        if reserved <= now and patience_us is not None and at - now > patience_us:
            reserved = None  # its time has passed and no room soon: reserve again
    if reserved is None:
        at = max(earliest(state.schedule, limit, window_us, now), allowed_at)
        state.schedule[member] = at
        _trim(state.schedule, limit)
        reserved = at
    if at > now:
        return Decision(False, now, at, reserved)
    state.starts[f"{member}:{now}"] = now
    _trim(state.starts, limit)
    return Decision(True, now, now, reserved)


# KEYS: starts, schedule. ARGV: limit, window (us), member, reservation (us or ''), now (us or '';
# '' means Redis TIME, a value is for tests), patience (us or '' for none).
# Returns {started, now, at, reserved}.
TRY_START_LUA = """
local limit, window, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local reserved = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function earliest(key)
  local e = redis.call('ZREVRANGE', key, limit - 1, limit - 1, 'WITHSCORES')
  if e[2] and tonumber(e[2]) + window > now then return tonumber(e[2]) + window end
  return now
end
local patience = tonumber(ARGV[6])
local allowed_at = earliest(KEYS[1])
local at
if reserved then
  at = math.max(reserved, allowed_at)
  if reserved <= now and patience and at - now > patience then reserved = nil end
end
if not reserved then
  at = math.max(earliest(KEYS[2]), allowed_at)
  redis.call('ZADD', KEYS[2], at, member)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(limit + 1))
  reserved = at
end
local last = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local horizon = math.max(now, at, tonumber(last[2] or 0)) + window
local expire_at = string.format('%.0f', math.floor(horizon / 1000) + 60000)
redis.call('PEXPIREAT', KEYS[2], expire_at)
if at > now then return {0, now, at, reserved} end
redis.call('ZADD', KEYS[1], now, member .. ':' .. string.format('%.0f', now))
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(limit + 1))
redis.call('PEXPIREAT', KEYS[1], expire_at)
return {1, now, now, reserved}
"""


class RedisWindow:
    """The sliding windows of one Redis: ``try_start`` runs ``TRY_START_LUA`` atomically."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._script = client.register_script(TRY_START_LUA)
        self._keys = keys

    def keys(self, actor_name: str) -> list[str]:
        return [self._keys.rate_starts(actor_name), self._keys.rate_schedule(actor_name)]

    def try_start(self, actor_name: str, rate: Rate, member: str, reserved: int | None = None,
                  now: int | None = None, patience_us: int | None = None) -> Decision:
        """One attempt; ``now`` (microseconds) replaces Redis TIME in tests only.

        The window is widened by :func:`margin_us`, so that it holds on the clock of whoever
        receives the calls too, not only on the limiter's.
        """
        window_us = round(rate.window_seconds * 1_000_000) + margin_us(rate)
        args = [rate.limit, window_us, member, _arg(reserved), _arg(now), _arg(patience_us)]
        started, at_now, at, reservation = self._script(keys=self.keys(actor_name), args=args)
        return Decision(bool(started), int(at_now), int(at), int(reservation))


#: Share of the window added as a margin, and its most (microseconds).
MARGIN_SHARE = 0.02
MARGIN_MAX_US = 50_000


def margin_us(rate: Rate) -> int:
    """Between the limiter's decision and the job's first line (or its call reaching a provider)
    a few milliseconds pass, unevenly: a window exact on Redis's clock then shows N + 1 starts
    in some window of the job's clock. 2 % of the window (at most 50 ms) absorbs that jitter
    and keeps 98 % of the rate.
    """
    return min(round(rate.window_seconds * 1_000_000 * MARGIN_SHARE), MARGIN_MAX_US)


def _arg(value: int | None) -> int | str:
    return "" if value is None else value
