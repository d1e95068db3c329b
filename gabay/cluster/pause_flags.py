"""Cluster-wide pause flags in Redis: what ``gabay pause``/``resume`` write and every worker reads.

One hash, ``gabay:pause``: the field ``*`` means "all queues paused"; a field named after a queue
is ``1`` when that queue is paused and ``0`` when it was resumed while all queues are paused.
Flags have no TTL: a pause lasts until someone resumes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import redis

from gabay.queues import ALL_QUEUES
from gabay.settings import Settings

ALL = "*"


@dataclass(frozen=True)
class PauseState:
    """A snapshot of the flags, cheap to consult for every message."""

    all_paused: bool = False
    paused: frozenset[str] = field(default_factory=frozenset)
    resumed: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes]) -> PauseState:
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        return cls(
            all_paused=ALL in fields,
            paused=frozenset(q for q, v in fields.items() if q != ALL and v == "1"),
            resumed=frozenset(q for q, v in fields.items() if q != ALL and v == "0"),
        )

    def is_paused(self, queue: str) -> bool:
        if queue in self.paused:
            return True
        return self.all_paused and queue not in self.resumed


class PauseFlags:
    """Reads and writes the pause flags; callers validate queue names (``check_queue_names``)."""

    def __init__(self, client: redis.Redis, settings: Settings, known_queues: Iterable[str] = ()) -> None:
        self.client = client
        self.key = settings.keys.pause
        self.signal = settings.keys.signal("pause")  # every process re-reads the flags when told
        self.known_queues = set(ALL_QUEUES) | set(known_queues)

    def pause(self, queues: list[str] | None = None) -> None:
        """Pause these queues (None: every queue, including ones declared later)."""
        with self.client.pipeline(transaction=True) as pipe:
            if queues is None:
                pipe.delete(self.key)
                pipe.hset(self.key, ALL, "1")
            else:
                for queue in queues:
                    pipe.hset(self.key, queue, "1")
            pipe.publish(self.signal, "1")
            pipe.execute()

    def resume(self, queues: list[str] | None = None) -> None:
        """Resume these queues (None: every queue)."""
        with self.client.pipeline(transaction=True) as pipe:
            if queues is None:
                pipe.delete(self.key)
            # "0" is harmless when not all queues are paused, and an exception when they are.
            for queue in queues or ():
                pipe.hset(self.key, queue, "0")
            pipe.publish(self.signal, "1")
            pipe.execute()

    def state(self) -> PauseState:
        return PauseState.from_hash(self.client.hgetall(self.key))

    def paused_queues(self) -> set[str]:
        """The paused queues among the known ones and any named in a flag."""
        state = self.state()
        names = self.known_queues | state.paused | state.resumed
        return {q for q in names if state.is_paused(q)}

    def is_paused(self, queue: str) -> bool:
        return self.state().is_paused(queue)
