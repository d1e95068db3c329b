"""Incidents in Redis: one per (rule, subject), so that every process and host sends an alert once.

Every worker process evaluates the rules and reports what it sees to :meth:`IncidentStore.observe`,
one Lua call per subject. The incident hash moves through ``pending`` (the condition holds, but
not yet for the rule's hold time) -> ``firing`` -> ``resolved``, and its ``sent`` field says which
of these the operators were last told. When ``state`` and ``sent`` differ, the first process to
observe it *claims* the notification (a lease) and sends it; the others see the claim and send
nothing. :meth:`IncidentStore.finish` records the outcome: the resolved incident is deleted, a
firing one sets the cooldown key, a channel that failed for a transient reason is tried again
after ``RETRY_AFTER`` seconds by whichever process observes next.

- A condition that clears before its firing alert went out (held back by the cooldown of the
  previous alert of the same rule and subject) ends silently: the operators were not told it began.
- A condition that comes back while its "resolved" alert has not gone out yet simply stays
  firing: no "resolved" then "firing" pair.
- A firing alert that some channel took gets its "resolved" even if another channel never took
  it; a "resolved" does not wait for the retry delay of the firing alert before it.
- A process that dies while sending loses its claim with the lease; another process sends again
  (at least once: the channels carry the incident id and event for the receiver to de-duplicate).

Times are the Redis server's clock (milliseconds), passed in by the caller: the time the
evaluation pass started, before its reads. An observation older than the incident's last change
is ignored, so a slow pass that read the state before another process saw it change cannot undo
that change (no "resolved" from a stale read, no re-opening from one).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import redis

from gabay.alerts.notification import Finding, Notification, Severity, State
from gabay.keys import Keys

#: Seconds before a notification whose channels failed for a transient reason is tried again.
RETRY_AFTER = 60.0
#: Attempts of one notification (per channel) before a transient failure is given up.
MAX_TRIES = 5

OBSERVE = """
local key, index, cooldown = KEYS[1], KEYS[2], KEYS[3]
local now, firing, hold = tonumber(ARGV[1]), ARGV[2] == '1', tonumber(ARGV[3])
local new_id, owner, lease = ARGV[4], ARGV[5], tonumber(ARGV[6])
local rule, subject, summary, details = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local state = redis.call('HGET', key, 'state')
local changed = tonumber(redis.call('HGET', key, 'changed_at') or '0')
if state and now < changed then return {state} end  -- read before the last change: stale
if firing then
  if not state then
    redis.call('HSET', key, 'id', new_id, 'rule', rule, 'subject', subject, 'state', 'pending',
               'since', now, 'changed_at', now, 'sent', '', 'claim_owner', '', 'claim_until', 0)
    redis.call('SADD', index, subject)
    state = 'pending'
  end
  if state == 'pending' and now - tonumber(redis.call('HGET', key, 'since')) >= hold then
    redis.call('HSET', key, 'state', 'firing', 'opened_at', now, 'changed_at', now)
    state = 'firing'
  elseif state == 'resolved' then
    redis.call('HSET', key, 'state', 'firing', 'changed_at', now)
    redis.call('HDEL', key, 'resolved_at')
    state = 'firing'
  end
  redis.call('HSET', key, 'summary', summary, 'details', details, 'seen_at', now)
else
  if not state then
    redis.call('SREM', index, subject)
    return {'none'}
  end
  if state == 'pending' then
    redis.call('DEL', key)
    redis.call('SREM', index, subject)
    return {'none'}
  end
  if state == 'firing' then
    redis.call('HSET', key, 'state', 'resolved', 'resolved_at', now, 'changed_at', now)
    state = 'resolved'
  end
end
local sent = redis.call('HGET', key, 'sent')
if state == 'pending' or state == sent then return {state} end
if state == 'resolved' and sent == '' and not redis.call('HGET', key, 'told_firing') then
  redis.call('DEL', key)
  redis.call('SREM', index, subject)
  return {'none'}
end
local held = tonumber(redis.call('HGET', key, 'claim_until')) > now
local retrying = redis.call('HGET', key, 'claim_owner') == ''  -- a failed send's delay, not a claim
if held and not (retrying and redis.call('HGET', key, 'retry_of') ~= state) then return {state} end
if state == 'firing' and redis.call('EXISTS', cooldown) == 1 then return {state} end
redis.call('HSET', key, 'claim_owner', owner, 'claim_until', now + lease)
local result = {'send'}
for _, value in ipairs(redis.call('HGETALL', key)) do result[#result + 1] = value end
return result
"""

FINISH = """
local key, index, cooldown = KEYS[1], KEYS[2], KEYS[3]
local owner, what, done, complete = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local now, cooldown_ms, retry_ms = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local delivered = ARGV[8] == '1'
if redis.call('HGET', key, 'claim_owner') ~= owner then return 0 end
local other = (what == 'firing') and 'resolved' or 'firing'
if what == 'firing' and delivered then redis.call('HSET', key, 'told_firing', '1') end
if not complete then
  redis.call('HSET', key, 'done_' .. what, done, 'claim_owner', '', 'claim_until', now + retry_ms,
             'retry_of', what)
  redis.call('HINCRBY', key, 'tries_' .. what, 1)
  return 1
end
if what == 'firing' and cooldown_ms > 0 then
  redis.call('SET', cooldown, '1', 'PX', cooldown_ms)
end
if what == 'resolved' and redis.call('HGET', key, 'state') == 'resolved' then
  local subject = redis.call('HGET', key, 'subject')
  redis.call('DEL', key)
  redis.call('SREM', index, subject)
  return 1
end
redis.call('HSET', key, 'sent', what, 'claim_owner', '', 'claim_until', 0)
redis.call('HDEL', key, 'done_' .. what, 'tries_' .. what, 'done_' .. other, 'tries_' .. other)
if what == 'resolved' then redis.call('HDEL', key, 'told_firing') end
return 1
"""


@dataclass(frozen=True)
class Claim:
    """This process won the right to send ``notification``; ``done``: channels already finished."""

    notification: Notification
    owner: str
    done: frozenset[str]
    tries: int


@dataclass(frozen=True)
class Incident:
    """An incident as stored (for ``gabay alerts list``)."""

    id: str
    rule: str
    subject: str
    state: str
    sent: str
    summary: str
    since: float
    opened_at: float | None


class IncidentStore:
    """The incidents of one deployment, shared by every process through Redis."""

    def __init__(self, client: redis.Redis, keys: Keys, *, cooldown_s: float, lease_s: float,
                 source: str = "", dashboard_url: str | None = None) -> None:
        self.client = client
        self.keys = keys
        self.cooldown_ms = int(cooldown_s * 1000)
        self.lease_ms = int(lease_s * 1000)
        self.source = source
        self.dashboard_url = dashboard_url
        self.retry_after_s = RETRY_AFTER
        self._observe = client.register_script(OBSERVE)
        self._finish = client.register_script(FINISH)

    def subjects(self, rule: str) -> set[str]:
        """The subjects that have an incident of ``rule`` (of any state)."""
        return {s.decode() for s in self.client.smembers(self.keys.alert_subjects(rule))}

    def observe(self, rule: str, severity: Severity, subject: str, finding: Finding | None, *,
                now_ms: int, hold_s: float = 0.0) -> Claim | None:
        """Report that the condition of ``rule`` holds for ``subject`` (a finding) or not (None).

        Returns a claim when this process must send a notification now.
        """
        details = json.dumps(finding.details, sort_keys=True, default=str) if finding else "{}"
        owner = uuid.uuid4().hex
        reply = self._observe(
            keys=self._keys(rule, subject),
            args=[now_ms, 1 if finding else 0, int(hold_s * 1000), uuid.uuid4().hex, owner,
                  self.lease_ms, rule, subject, finding.summary if finding else "", details],
        )
        if not reply or reply[0] != b"send":
            return None
        fields = {reply[i].decode(): reply[i + 1].decode() for i in range(1, len(reply) - 1, 2)}
        return self._claim(fields, severity, owner)

    def finish(self, claim: Claim, done: set[str], *, complete: bool, now_ms: int,
               delivered: bool = True) -> bool:
        """Record the outcome of a claimed send; False when the claim had been lost meanwhile.

        ``done``: the channels finished with it (delivered or failed for good); ``complete``: no
        channel is left to try again; ``delivered``: at least one channel took it (a firing alert
        some channel has then gets its "resolved" even if the others never took it).
        """
        note = claim.notification
        reply = self._finish(
            keys=self._keys(note.rule, note.subject),
            args=[claim.owner, note.state, ",".join(sorted(done)), 1 if complete else 0, now_ms,
                  self.cooldown_ms, int(self.retry_after_s * 1000), 1 if delivered else 0],
        )
        return bool(reply)

    def incidents(self, rules: tuple[str, ...]) -> list[Incident]:
        """Every stored incident of ``rules``, oldest first."""
        found = []
        for rule in rules:
            for subject in sorted(self.subjects(rule)):
                raw = self.client.hgetall(self.keys.alert_incident(rule, subject))
                if not raw:
                    continue
                f = {k.decode(): v.decode() for k, v in raw.items()}
                found.append(Incident(
                    id=f.get("id", ""), rule=rule, subject=subject, state=f.get("state", ""),
                    sent=f.get("sent", ""), summary=f.get("summary", ""),
                    since=int(f.get("since", 0)) / 1000,
                    opened_at=int(f["opened_at"]) / 1000 if f.get("opened_at") else None,
                ))
        return sorted(found, key=lambda incident: incident.since)

    def _keys(self, rule: str, subject: str) -> list[str]:
        return [self.keys.alert_incident(rule, subject), self.keys.alert_subjects(rule),
                self.keys.alert_cooldown(rule, subject)]

    def _claim(self, fields: dict[str, str], severity: Severity, owner: str) -> Claim:
        state: State = "resolved" if fields["state"] == "resolved" else "firing"
        opened = fields.get("opened_at") or fields.get("since") or "0"
        resolved = fields.get("resolved_at")
        details: dict[str, Any] = json.loads(fields.get("details") or "{}")
        note = Notification(
            incident_id=fields["id"], rule=fields["rule"], subject=fields["subject"], state=state,
            severity=severity, summary=fields.get("summary", ""), details=details,
            opened_at=int(opened) / 1000,
            resolved_at=int(resolved) / 1000 if resolved else None,
            source=self.source, dashboard_url=self.dashboard_url,
        )
        done = frozenset(filter(None, fields.get(f"done_{state}", "").split(",")))
        return Claim(note, owner, done, int(fields.get(f"tries_{state}", 0)))


def monitor_line(incidents: list[Incident]) -> str:
    """The alerts' line of the monitoring line.

    ``Alerts - Firing: 1 (queue_depth: retrieval), Pending: 0``
    """
    firing = [f"{i.rule}: {i.subject}" for i in incidents if i.state == "firing"]
    pending = sum(1 for i in incidents if i.state == "pending")
    return (f"Alerts - Firing: {len(firing)}" + (f" ({', '.join(firing)})" if firing else "")
            + f", Pending: {pending}")
