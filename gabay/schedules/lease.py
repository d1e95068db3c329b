"""The leader lease: one process of the whole cluster fires schedules, holding a Redis key with a TTL.

The key holds ``<fencing token> <identity>`` and expires ``lease_ms`` after its last renewal, on
the Redis server's clock (a PX expiry), never a host's. Each new term takes a fresh token from a
counter (INCR), so a process that lost the lease without noticing (frozen, cut off) holds a stale
token, and the fire script (:mod:`gabay.schedules.firing`) refuses it: firing checks the key
still holds exactly this term, in the same atomic step that records the slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from gabay.keys import Keys

#: KEYS: leader, fencing counter. ARGV: identity, lease ms, current term's value ("" when none).
#: Returns {token, held (1/0), ms until the holder's lease runs out}.
ACQUIRE = """
local current = redis.call("get", KEYS[1])
if current then
    if current == ARGV[3] then
        redis.call("pexpire", KEYS[1], ARGV[2])
        return {tonumber(string.match(current, "^(%d+) ")), 1, tonumber(ARGV[2])}
    end
    return {0, 0, redis.call("pttl", KEYS[1])}
end
local token = redis.call("incr", KEYS[2])
redis.call("set", KEYS[1], token .. " " .. ARGV[1], "PX", ARGV[2])
return {token, 1, tonumber(ARGV[2])}
"""

#: KEYS: leader. ARGV: the term's value. Deletes the key only if this term still holds it.
RELEASE = """
if redis.call("get", KEYS[1]) == ARGV[1] then
    return redis.call("del", KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class Term:
    """One leadership term: its fencing token and the key's value while it lasts."""

    token: int
    identity: str

    @property
    def value(self) -> str:
        return f"{self.token} {self.identity}"


@dataclass(frozen=True)
class Attempt:
    """The answer to acquire-or-renew: the term held (None: another holds it), and ms until its end."""

    term: Term | None
    remaining_ms: int


class LeaderLease:
    """Acquire, renew and release the schedules' leader lease for ``identity``."""

    def __init__(self, client: redis.Redis, keys: Keys, identity: str, lease_ms: int) -> None:
        self.client = client
        self.keys = keys
        self.identity = identity
        self.lease_ms = lease_ms
        self._acquire = client.register_script(ACQUIRE)
        self._release = client.register_script(RELEASE)

    def acquire(self, current: Term | None) -> Attempt:
        """Renew ``current`` if it still holds, else take the lease if it is free (a new token).

        A term that ran out is never revived: a free lease is taken with a new token.
        """
        token, held, remaining = self._acquire(
            keys=[self.keys.schedule_leader, self.keys.schedule_fencing],
            args=[self.identity, self.lease_ms, current.value if current else ""])
        if not held:
            return Attempt(None, int(remaining))
        return Attempt(Term(int(token), self.identity), int(remaining))

    def release(self, term: Term) -> bool:
        """Give the lease up (a stopping process), so another takes over at once."""
        return bool(self._release(keys=[self.keys.schedule_leader], args=[term.value]))

    def holder(self) -> str | None:
        """``<token> <identity>`` of the current leader, or None."""
        value = self.client.get(self.keys.schedule_leader)
        return value.decode() if value is not None else None
