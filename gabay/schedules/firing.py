"""Firing a slot: one Lua step that checks the leader's term, records the slot and enqueues the message.

Everything that must not double happens in that one atomic script, so it is all or nothing:

1. the leader key must still hold this term (``<fencing token> <identity>``): a process whose
   lease ran out, or that was replaced, fires nothing;
2. the slot must be later than the schedule's last handled slot, which it then becomes: each slot
   is handled once, by one leader, whatever two processes believe;
3. a paused schedule's slot is recorded as skipped (the pause flag is read inside the script);
4. the Dramatiq message goes straight into Dramatiq's Redis layout, exactly as the broker's own
   enqueue writes it (the message in ``<queue>.msgs``, its id pushed onto ``<queue>``), so there is
   no window in which the slot is recorded but the message not sent, or the other way round.

The message id is derived from (deployment, schedule, slot) (a UUID 5), so one slot's run has one
id in the logs, the dashboard and the schedule's record, and no slot can produce a second one.
The broker's enqueue hooks do not run for it; none of gabay's middleware uses them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import dramatiq
import redis

from gabay.keys import Keys
from gabay.schedules.config import Schedule
from gabay.schedules.lease import Term
from gabay.schedules.policy import Decision

#: Namespace of the message ids of scheduled runs (uuid5 of "<prefix><schedule>@<slot ms>").
RUN_NAMESPACE = uuid.UUID("6f1c2f1e-5a7e-4c1b-9a55-2c0f4d1e8b37")
HISTORY_LENGTH = 50

#: KEYS: leader, state, history, paused, queue list, queue messages.
#: ARGV: term value, slot, action, name, message id, message, now ms, reason.
#: Returns {code, detail}: -1 not the leader, 0 slot already handled (detail: the last slot),
#: 1 fired, 2 skipped (detail: why), 3 recorded as the starting point.
FIRE = """
if redis.call("get", KEYS[1]) ~= ARGV[1] then
    return {-1, ""}
end
local last = redis.call("hget", KEYS[2], "slot")
if last and tonumber(ARGV[2]) <= tonumber(last) then
    return {0, last}
end
redis.call("hset", KEYS[2], "slot", ARGV[2])
local action, reason = ARGV[3], ARGV[8]
if action == "fire" and redis.call("hget", KEYS[4], ARGV[4]) == "1" then
    action, reason = "skip", "paused"
end
if action == "fire" then
    redis.call("hset", KEYS[6], ARGV[5], ARGV[6])
    redis.call("rpush", KEYS[5], ARGV[5])
    redis.call("publish", ARGV[9], "1")
    redis.call("hset", KEYS[2], "message_id", ARGV[5], "run_slot", ARGV[2], "fired_at", ARGV[7],
               "late", reason == "late" and "1" or "0", "outcome", "enqueued", "outcome_at", ARGV[7],
               "error", "", "attempts", "0")
elseif action == "skip" then
    redis.call("hset", KEYS[2], "skipped_slot", ARGV[2], "skip_reason", reason, "skipped_at", ARGV[7])
end
if action == "fire" or (action == "skip" and reason ~= "paused" and reason ~= "disabled") then
    redis.call("lpush", KEYS[3], cjson.encode({slot = ARGV[2], action = action, reason = reason,
        message_id = action == "fire" and ARGV[5] or "", at = ARGV[7], leader = ARGV[1]}))
    redis.call("ltrim", KEYS[3], 0, HISTORY_LAST)
end
if action == "fire" then return {1, reason} end
if action == "skip" then return {2, reason} end
return {3, reason}
""".replace("HISTORY_LAST", str(HISTORY_LENGTH - 1))

#: KEYS: state. ARGV: message id, outcome, at ms, error, attempts. Only the schedule's last run.
OUTCOME = """
if redis.call("hget", KEYS[1], "message_id") ~= ARGV[1] then
    return 0
end
redis.call("hset", KEYS[1], "outcome", ARGV[2], "outcome_at", ARGV[3], "error", ARGV[4],
           "attempts", ARGV[5])
return 1
"""

NOT_LEADER, ALREADY, FIRED, SKIPPED, BASELINE = -1, 0, 1, 2, 3


@dataclass(frozen=True)
class Result:
    code: int
    detail: str
    message_id: str = ""


def run_id(keys: Keys, name: str, slot: int) -> str:
    """The message id of schedule ``name``'s run for ``slot``: the same wherever it is computed."""
    return str(uuid.uuid5(RUN_NAMESPACE, f"{keys.prefix}{name}@{slot}"))


def build_message(keys: Keys, schedule: Schedule, queue_name: str, slot: int,
                  now_ms: int) -> dramatiq.Message:
    """The run's Dramatiq message; ``redis_message_id`` is what the broker's enqueue would add."""
    message_id = run_id(keys, schedule.name, slot)
    return dramatiq.Message(
        queue_name=queue_name, actor_name=schedule.actor, args=tuple(schedule.args),
        kwargs=dict(schedule.kwargs),
        options={"redis_message_id": message_id, "schedule": schedule.name, "schedule_slot": slot},
        message_id=message_id, message_timestamp=now_ms)


class Firing:
    """Applies decisions for one deployment (``keys``) atomically; records runs' outcomes."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._fire = client.register_script(FIRE)
        self._outcome = client.register_script(OUTCOME)

    def apply(self, term: Term, schedule: Schedule, decision: Decision, queue_name: str,
              now_ms: int) -> Result:
        """Apply ``decision`` under ``term``: see the module docstring for what is checked."""
        message_id, encoded = "", b""
        if decision.action == "fire":
            message = build_message(self.keys, schedule, queue_name, decision.slot, now_ms)
            message_id, encoded = message.message_id, message.encode()
        code, detail = self._fire(
            keys=[self.keys.schedule_leader, self.keys.schedule_state(schedule.name),
                  self.keys.schedule_history(schedule.name), self.keys.schedule_paused,
                  self.keys.queue(queue_name), self.keys.messages(queue_name)],
            args=[term.value, decision.slot, decision.action, schedule.name, message_id, encoded,
                  now_ms, decision.reason, self.keys.wake(queue_name)])
        detail = detail.decode() if isinstance(detail, bytes) else str(detail)
        return Result(int(code), detail, message_id if int(code) == FIRED else "")

    def last_slot(self, name: str) -> int | None:
        value = self.client.hget(self.keys.schedule_state(name), "slot")
        return int(value) if value is not None else None

    def record_outcome(self, name: str, message_id: str, outcome: str, at_ms: int, error: str = "",
                       attempts: int = 0) -> bool:
        """Record how the schedule's last run went (ignored for an older run of it)."""
        return bool(self._outcome(keys=[self.keys.schedule_state(name)],
                                  args=[message_id, outcome, at_ms, error, attempts]))
