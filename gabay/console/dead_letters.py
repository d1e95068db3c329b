"""A job's dead-lettered message, and requeueing it with its ids kept.

The Cancellation middleware remembers where a job's message was dead-lettered
(``jobs:dead-letter:<job id>``: queue and Redis message id). A message dead-lettered before that
index existed is found by reading the dead-letter hashes of the job queues (bounded). Requeueing
is one Lua call: the message leaves the dead-letter set and hash and is pushed to the tail of its
queue under the same Redis message id, with the same message id (the job id), its retry count
reset to 0 and its last traceback dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from gabay.keys import Keys

#: How many dead letters per queue the fallback look-up reads at most.
FALLBACK_SCAN = 10_000

REQUEUE = """
if redis.call("hexists", KEYS[2], ARGV[1]) == 0 then
    return 0
end
redis.call("zrem", KEYS[1], ARGV[1])
redis.call("hdel", KEYS[2], ARGV[1])
redis.call("hset", KEYS[4], ARGV[1], ARGV[2])
redis.call("rpush", KEYS[3], ARGV[1])
redis.call("publish", ARGV[3], "1")
return 1
"""


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    redis_id: str
    data: dict[str, Any]


class DeadLetters:
    """Finds and requeues the dead-lettered message of a job."""

    def __init__(self, client: redis.Redis, keys: Keys, queues: tuple[str, ...]) -> None:
        self.client = client
        self.keys = keys
        self.queues = queues
        self._requeue = client.register_script(REQUEUE)

    def find(self, job_id: str) -> DeadLetter | None:
        indexed = self.client.get(self.keys.dead_letter_of(job_id))
        if indexed is not None:
            queue, _, redis_id = indexed.decode().partition(" ")
            raw = self.client.hget(self.keys.dead_messages(queue), redis_id)
            if raw is not None:
                return DeadLetter(queue, redis_id, json.loads(raw))
        for queue in self.queues:
            letters = self.client.hscan_iter(self.keys.dead_messages(queue), count=500)
            for read, (redis_id, raw) in enumerate(letters, start=1):
                data = json.loads(raw)
                if data.get("message_id") == job_id:
                    return DeadLetter(queue, redis_id.decode(), data)
                if read >= FALLBACK_SCAN:
                    break
        return None

    def requeue(self, letter: DeadLetter) -> bool:
        """Back to the tail of its queue, ids kept, retries reset; False if it left the DLQ."""
        data = dict(letter.data)
        options = {k: v for k, v in data.get("options", {}).items() if k != "traceback"}
        options["retries"] = 0
        options["gabay_requeued"] = int(options.get("gabay_requeued", 0)) + 1
        data["options"] = options
        keys = [self.keys.dead_letters(letter.queue), self.keys.dead_messages(letter.queue),
                self.keys.queue(letter.queue), self.keys.messages(letter.queue)]
        done = bool(self._requeue(keys=keys, args=[letter.redis_id, json.dumps(data),
                                                   self.keys.wake(letter.queue)]))
        if done:
            self.client.delete(self.keys.dead_letter_of(data.get("message_id", "")))
        return done
