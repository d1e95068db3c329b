"""Cancel requests: which jobs an operator asked to stop, shared by every process through Redis.

A request is a member of one sorted set (``cancel:requests``), scored by a counter
(``cancel:sequence``) that one Lua call increments and uses, so that each worker process reads
only the requests it has not seen: ``ZRANGEBYSCORE (<last seen> +inf``, a few times a second,
is all a process pays while nothing is cancelled. The set keeps the newest ``KEPT`` requests.

:class:`JobCancelled` is what stops the job: raised from the Cancellation middleware before a
waiting message starts, into the worker thread of a running one, or by the job's own guard before
a side effect. It is an :class:`~gabay.cluster.intake.OwnershipLost`: the job's own failure
handling lets it through unrecorded, Dramatiq neither retries it nor counts it as a failure, and
the message is acknowledged (it is not put back).
"""

from __future__ import annotations

import redis

from gabay.cluster.intake import OwnershipLost
from gabay.keys import Keys

#: How many cancel requests the set keeps (the oldest are trimmed).
KEPT = 100_000

REQUEST = """
local seq = redis.call("incr", KEYS[2])
redis.call("zadd", KEYS[1], seq, ARGV[1])
redis.call("zremrangebyrank", KEYS[1], 0, -tonumber(ARGV[2]) - 1)
redis.call("publish", ARGV[3], "1")
return seq
"""


class JobCancelled(OwnershipLost):
    """The job was cancelled by an operator; it stops here and its message is acknowledged."""


class CancelRequests:
    """Writes and reads the cancel requests."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._request = client.register_script(REQUEST)

    def request(self, job_id: str) -> int:
        """Ask every process to cancel ``job_id``; returns the request's sequence number."""
        return int(self._request(keys=[self.keys.cancel_requests, self.keys.cancel_sequence],
                                 args=[job_id, KEPT, self.keys.signal("cancel")]))

    def withdraw(self, job_id: str) -> None:
        """Forget a request (a retried job may run again)."""
        self.client.zrem(self.keys.cancel_requests, job_id)

    def is_requested(self, job_id: str) -> bool:
        return self.client.zscore(self.keys.cancel_requests, job_id) is not None

    def since(self, seen: int) -> tuple[list[str], int]:
        """The job ids requested after sequence ``seen``, and the new last seen sequence."""
        rows = self.client.zrangebyscore(self.keys.cancel_requests, f"({seen}", "+inf",
                                         withscores=True)
        if not rows:
            return [], seen
        return [member.decode() for member, _ in rows], int(max(score for _, score in rows))
