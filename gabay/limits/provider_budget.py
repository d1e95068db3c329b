"""Provider budgets: RPM, TPM and concurrency per provider x model x API key, shared by every process.

A provider's rate limit belongs to the account, not to a worker: eight processes that each keep
"10 calls a minute" still overrun one OpenAI key. So every paid call first takes its share from
one budget in Redis, in one Lua script on Redis ``TIME`` (hosts' clocks do not matter):

* ``acquire`` reserves one request and the call's *estimated* tokens from two token buckets
  (capacity: the per-minute limit times ``LLM_BUDGET_HEADROOM``, refilled continuously, as
  OpenAI's limiter does) and, for DeepSeek, a place among ``LLM_DEEPSEEK_CONCURRENCY`` calls in
  flight. No room: the caller learns when there will be (it waits that long in its thread when
  short, else the job defers without spending a retry).
* ``settle`` gives back the estimate and takes the real usage, and learns the real limits from
  the response headers (``x-ratelimit-limit-requests``/``-tokens``; when they change, or when
  the provider says it is nearly out, ``-remaining-*`` lowers the bucket to what it says is
  left, less the headroom and the calls still in flight).
* ``hold``: a 429 with ``retry-after`` (or a reset header) holds that key cluster-wide until the
  reset: every process's next ``acquire`` for it answers "wait" without calling the provider,
  while other providers and keys keep working.

Fail closed: when Redis cannot be read, ``acquire`` raises :class:`ProviderHeld` (the call is not
made; the job goes back without spending a retry).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from gabay.errors import ProviderHeld, ProviderQuotaExhausted
from gabay.keys import Keys

logger = logging.getLogger(__name__)

#: How long an in-flight ticket counts (concurrency, tokens in flight) if its settle is lost (a crash).
TICKET_TTL_MS = 120_000
#: How long an unused budget hash lives.
BUDGET_TTL_MS = 3_600_000
#: The reason of a hold set because the account is out of quota or balance (not a rate limit).
QUOTA_HOLD_REASON = "quota exhausted"

# refilled(budget, rpm, tpm, headroom, now, credit): the budget's limits (learned ones first, else
# the configured), its caps (limits x headroom) and its request and token buckets refilled at the
# caps' rate since its last write, ``credit`` tokens added; the buckets never pass the caps.
_REFILLED = """
local function refilled(budget, default_rpm, default_tpm, headroom, now, credit)
  local b = redis.call('HMGET', budget, 'limit_requests', 'limit_tokens', 'requests', 'tokens', 'ts')
  local rpm = tonumber(b[1]) or default_rpm
  local tpm = tonumber(b[2]) or default_tpm
  local cap_r, cap_t = rpm * headroom, tpm * headroom
  local elapsed = math.max(now - (tonumber(b[5]) or now), 0)
  local req = math.min(cap_r, (tonumber(b[3]) or cap_r) + elapsed * cap_r / 60000)
  local tok = math.min(cap_t, (tonumber(b[4]) or cap_t) + elapsed * cap_t / 60000 + credit)
  return rpm, tpm, cap_r, cap_t, req, tok
end
"""

# KEYS: budget hash, hold key, in-flight set.
# ARGV: tokens, rpm, tpm, concurrency, ticket, ticket ttl ms, headroom (0..1).
# Returns {granted (1/0), wait ms, reason}.
ACQUIRE_LUA = _REFILLED + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hold = redis.call('PTTL', KEYS[2])
if hold > 0 then
  return {0, hold, 'hold: ' .. (redis.call('GET', KEYS[2]) or '429')}
end
local est = tonumber(ARGV[1])
local headroom = tonumber(ARGV[7])
local rpm, tpm, cap_r, cap_t, req, tok = refilled(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
                                                 headroom, now, 0)
local conc = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if conc > 0 and redis.call('ZCARD', KEYS[3]) >= conc then
  return {0, 100, 'concurrency'}
end
if rpm > 0 and req < 1 then
  return {0, math.ceil((1 - req) * 60000 / cap_r), 'rpm'}
end
if tpm > 0 then
  local need = math.min(est, cap_t)
  if tok < need then
    return {0, math.ceil((need - tok) * 60000 / cap_t), 'tpm'}
  end
  tok = tok - est
end
if rpm > 0 then req = req - 1 end
redis.call('HSET', KEYS[1], 'requests', tostring(req), 'tokens', tostring(tok), 'ts', now)
redis.call('PEXPIRE', KEYS[1], 3600000)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[6]), ARGV[5])
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[6]))
return {1, 0, 'ok'}
"""

# KEYS: budget hash, in-flight set.
# ARGV: ticket, estimate, actual tokens, rpm, tpm, headroom, limit_requests, limit_tokens,
#       remaining_requests, remaining_tokens ('' when unknown).
SETTLE_LUA = _REFILLED + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
-- the estimates of the calls still in flight (members are <ticket>:<estimate>; a lost one expires)
local inflight = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  inflight = inflight + (tonumber(string.match(member, ':(%d+)$')) or 0)
end
local headroom = tonumber(ARGV[6])
local known = redis.call('HMGET', KEYS[1], 'limit_requests', 'limit_tokens')
local learned = (ARGV[7] ~= '' and ARGV[7] ~= known[1]) or (ARGV[8] ~= '' and ARGV[8] ~= known[2])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'limit_requests', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'limit_tokens', ARGV[8]) end
-- the estimate reserved beyond the real usage goes back to the bucket
local rpm, tpm, cap_r, cap_t, req, tok = refilled(KEYS[1], tonumber(ARGV[4]), tonumber(ARGV[5]),
                                                 headroom, now, tonumber(ARGV[2]) - tonumber(ARGV[3]))
-- What the provider says is left, less the margin and the calls still in flight here (it may
-- not have counted them yet), when the limits were just learned or when the provider is nearly
-- out (someone else uses the key): otherwise our own count is exact and already below its.
local margin_r, margin_t = rpm * (1 - headroom), tpm * (1 - headroom)
if ARGV[9] ~= '' and rpm > 0 and (learned or tonumber(ARGV[9]) < margin_r) then
  req = math.min(req, tonumber(ARGV[9]) - (learned and margin_r or 0))
end
if ARGV[10] ~= '' and tpm > 0 and (learned or tonumber(ARGV[10]) < margin_t) then
  tok = math.min(tok, tonumber(ARGV[10]) - (learned and margin_t or 0) - inflight)
end
redis.call('HSET', KEYS[1], 'requests', tostring(req), 'tokens', tostring(tok), 'ts', now)
redis.call('PEXPIRE', KEYS[1], 3600000)
return 1
"""

# KEYS: hold key. ARGV: ms, reason. Never shortens a longer hold.
HOLD_LUA = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[1]))
end
return redis.call('PTTL', KEYS[1])
"""


@dataclass(frozen=True)
class Scope:
    """One budget: a provider, a model and an API key (named by a digest, never the key)."""

    provider: str
    model: str
    key_id: str

    @classmethod
    def of(cls, provider: str, model: str, api_key: str) -> Scope:
        return cls(provider, model, hashlib.sha256(api_key.encode()).hexdigest()[:10])

    @property
    def name(self) -> str:
        return f"{self.provider}:{self.model}:{self.key_id}"


@dataclass(frozen=True)
class Limits:
    """The limits assumed until the provider's headers say otherwise (0: not limited)."""

    rpm: int = 0
    tpm: int = 0
    concurrency: int = 0


@dataclass(frozen=True)
class Ticket:
    """One granted reservation, to settle after the call."""

    scope: Scope
    limits: Limits
    estimate: int
    id: str


@dataclass(frozen=True)
class RateHeaders:
    """What a response's headers say about the key's limits (None: not sent)."""

    limit_requests: int | None = None
    limit_tokens: int | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_ms: int | None = None  # the later of the two resets, or retry-after

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> RateHeaders:
        lower = {k.lower(): v for k, v in headers.items()}
        retry_ms = _int(lower.get("retry-after-ms"))  # milliseconds, not a duration
        if retry_ms is None:
            retry_ms = parse_duration_ms(lower.get("retry-after"))
        resets = [parse_duration_ms(lower.get(name)) for name in
                  ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")]
        later = max((r for r in resets if r is not None), default=None)
        return cls(_int(lower.get("x-ratelimit-limit-requests")),
                   _int(lower.get("x-ratelimit-limit-tokens")),
                   _int(lower.get("x-ratelimit-remaining-requests")),
                   _int(lower.get("x-ratelimit-remaining-tokens")),
                   retry_ms if retry_ms is not None else later)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration_ms(value: str | None) -> int | None:
    """``"1s"``, ``"6m0s"``, ``"20ms"``, ``"1.5"`` (seconds, as retry-after) -> milliseconds."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(round(float(text) * 1000), 0)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts:
        return None
    scale = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
    return round(sum(float(number) * scale[unit] for number, unit in parts))


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


class ProviderBudget:
    """The shared budgets; ``headroom`` is the share of each limit used (0.97: 3% margin)."""

    def __init__(self, client: redis.Redis, keys: Keys, *, headroom: float = 0.97,
                 wait_ms: float = 2_000, ticket_ttl_ms: int = TICKET_TTL_MS) -> None:
        self.client = client
        self.keys = keys
        self.headroom = headroom
        self.wait_ms = wait_ms
        self.ticket_ttl_ms = ticket_ttl_ms
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._settle = client.register_script(SETTLE_LUA)
        self._hold = client.register_script(HOLD_LUA)

    def acquire(self, scope: Scope, limits: Limits, estimate: int,
                wait_ms: float | None = None) -> Ticket:
        """Reserve one request and ``estimate`` tokens, waiting up to ``wait_ms`` in this thread.

        Raises ProviderHeld (with when to try again) when there is no room within that wait, or
        when the budget cannot be read (fail closed).
        """
        patience_end = time.monotonic() + (self.wait_ms if wait_ms is None else wait_ms) / 1000
        estimate = max(int(estimate), 1)
        ticket = Ticket(scope, limits, estimate, f"{uuid.uuid4().hex}:{estimate}")
        while True:
            try:
                granted, wait, reason = self._acquire(
                    keys=[self.keys.provider_budget(scope.name), self.keys.provider_hold(scope.name),
                          self.keys.provider_inflight(scope.name)],
                    args=[ticket.estimate, limits.rpm, limits.tpm, limits.concurrency, ticket.id,
                          self.ticket_ttl_ms, self.headroom])
            except redis.RedisError as exc:
                raise ProviderHeld(f"{scope.provider} budget unreadable ({type(exc).__name__}): "
                                   "not calling", retry_in_ms=1_000) from None
            if int(granted):
                return ticket
            wait = int(wait)
            reason = reason.decode() if isinstance(reason, bytes) else str(reason)
            if reason.startswith("hold: " + QUOTA_HOLD_REASON):  # not busy: out of money
                raise ProviderQuotaExhausted(f"{scope.provider} quota exhausted (the key is skipped "
                                             f"for {wait} ms more)")
            left_ms = (patience_end - time.monotonic()) * 1000
            if wait > left_ms:
                raise ProviderHeld(f"{scope.provider} {scope.model} budget: {reason}, "
                                   f"room in {wait} ms", retry_in_ms=wait)
            time.sleep(wait / 1000)

    def settle(self, ticket: Ticket, used_tokens: int, headers: RateHeaders | None = None) -> None:
        """Replace the estimate with the real usage; learn the limits the headers state."""
        h = headers or RateHeaders()
        try:
            self._settle(keys=[self.keys.provider_budget(ticket.scope.name),
                               self.keys.provider_inflight(ticket.scope.name)],
                         args=[ticket.id, ticket.estimate, max(used_tokens, 0), ticket.limits.rpm,
                               ticket.limits.tpm, self.headroom, _arg(h.limit_requests),
                               _arg(h.limit_tokens), _arg(h.remaining_requests),
                               _arg(h.remaining_tokens)])
        except redis.RedisError as exc:  # the reservation stays counted: errs on the safe side
            logger.warning("Could not settle the %s budget: %s", ticket.scope.provider,
                           type(exc).__name__)

    def hold(self, scope: Scope, ms: int, reason: str) -> int:
        """Hold ``scope`` for everyone for ``ms`` (a 429's reset); returns the hold's remaining ms."""
        try:
            return int(self._hold(keys=[self.keys.provider_hold(scope.name)],
                                  args=[max(int(ms), 1), reason[:200]]))
        except redis.RedisError as exc:
            logger.warning("Could not hold the %s budget: %s", scope.provider, type(exc).__name__)
            return int(ms)

    def state(self, scope: Scope) -> dict[str, Any]:
        """The budget as stored (for status pages and tests)."""
        raw = self.client.hgetall(self.keys.provider_budget(scope.name))
        found: dict[str, Any] = {k.decode(): float(v) for k, v in raw.items()}
        found["hold_ms"] = max(int(self.client.pttl(self.keys.provider_hold(scope.name))), 0)
        found["inflight"] = int(self.client.zcard(self.keys.provider_inflight(scope.name)))
        return found


def _arg(value: int | None) -> int | str:
    return "" if value is None else value


def note_quota_exhausted(client: redis.Redis, keys: Keys, provider: str, reason: str,
                         at: float | None = None) -> None:
    """Remember that ``provider``'s account ran out of quota or balance (the provider_quota alert
    reads it); a Redis error is logged, never raised (the call's failure is what matters)."""
    value = json.dumps({"at": time.time() if at is None else at, "reason": reason[:300]})
    try:
        client.hset(keys.provider_quota_exhausted, provider, value)
    except redis.RedisError as exc:
        logger.warning("Could not record the %s quota exhaustion: %s", provider, type(exc).__name__)
