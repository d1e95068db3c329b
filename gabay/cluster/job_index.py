"""The index of job records that the operator console pages through: sorted sets in Redis.

Every job id is in ``jobs:index:all`` and in one set per facet value it has (``kind:<kind>``,
``status:<status>``, ``queue:<queue>``, ``tenant:<tenant>``), scored by the job's creation time.
The job store writes ``all``, ``kind`` and ``status`` in the same transaction as the record
(:func:`index_created`, :func:`index_status_changed`); the Cancellation middleware adds ``queue``
when a job's message is enqueued and ``tenant`` when it starts (:func:`index_facet`). Members older
than the records' TTL are trimmed when new jobs are indexed.

A page is one ``ZREVRANGEBYSCORE ... LIMIT`` on the smallest set the filters name, the other
filters checked with ``ZSCORE`` in one pipeline per chunk: the cost of a page does not grow with
the number of jobs, and nothing scans the keyspace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from gabay.keys import Keys

FACETS = ("kind", "status", "queue", "tenant")
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
#: Members looked at per round trip while filling a page with several filters.
CHUNK = 200
#: At most this many members are looked at for one page (then the page says "more may match").
SCAN_LIMIT = 5000


def index_created(pipe: redis.client.Pipeline, keys: Keys, job_id: str, kind: str, status: str,
                  created_at: float, ttl: int) -> None:
    """Index a new job (in the caller's pipeline) and trim members older than ``ttl``."""
    pipe.zadd(keys.job_index(), {job_id: created_at})
    pipe.zadd(keys.job_index("kind", kind), {job_id: created_at})
    pipe.zadd(keys.job_index("status", status), {job_id: created_at})
    oldest = f"({created_at - ttl}"
    pipe.zremrangebyscore(keys.job_index(), "-inf", oldest)
    pipe.zremrangebyscore(keys.job_index("kind", kind), "-inf", oldest)
    for name in STATUSES:
        pipe.zremrangebyscore(keys.job_index("status", name), "-inf", oldest)


def index_status_changed(pipe: redis.client.Pipeline, keys: Keys, job_id: str, before: str,
                         after: str, created_at: float) -> None:
    """Move a job from one status set to another (in the caller's transaction)."""
    if before != after:
        pipe.zrem(keys.job_index("status", before), job_id)
        pipe.zadd(keys.job_index("status", after), {job_id: created_at})


def index_facet(pipe: redis.client.Pipeline, keys: Keys, facet: str, value: str, job_id: str,
                score: float) -> None:
    """Add a job to a queue or tenant set, keeping the first score it got."""
    pipe.zadd(keys.job_index(facet, value), {job_id: score}, nx=True)


@dataclass(frozen=True)
class JobQuery:
    """What the operator asked for: facet filters and a creation time range (epoch seconds)."""

    filters: dict[str, str] = field(default_factory=dict)
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended: the last member shown and its score."""

    score: float
    job_id: str

    def encode(self) -> str:
        return f"{self.score!r}:{self.job_id}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        if not text or ":" not in text:
            return None
        score, _, job_id = text.partition(":")
        try:
            return cls(float(score), job_id)
        except ValueError:
            return None


@dataclass(frozen=True)
class Page:
    """One page of job ids, newest first; ``next`` is None on the last page."""

    ids: list[str]
    next: Cursor | None
    total: int | None  # known when at most one filter is set
    truncated: bool = False  # SCAN_LIMIT members looked at without filling the page


class JobIndex:
    """Reads pages of job ids from the index sets."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def page(self, query: JobQuery, size: int, after: Cursor | None = None) -> Page:  # noqa: C901
        sets = [self.keys.job_index(facet, value) for facet, value in query.filters.items()]
        if not sets:
            sets = [self.keys.job_index()]
        if len(sets) > 1:
            pipe = self.client.pipeline(transaction=False)
            for key in sets:
                pipe.zcard(key)
            sizes = pipe.execute()
            sets = [key for _, key in sorted(zip(sizes, sets, strict=True))]
        primary, others = sets[0], sets[1:]
        low = "-inf" if query.since is None else repr(query.since)
        high = "+inf" if query.until is None else repr(query.until)
        total = None
        if not others:
            total = int(self.client.zcount(primary, low, high))
        found: list[str] = []
        cursor = after
        looked = 0
        while len(found) < size and looked < SCAN_LIMIT:
            top = high if cursor is None else repr(min(cursor.score, float(high)))
            chunk = self.client.zrevrangebyscore(primary, top, low, start=0,
                                                 num=CHUNK + (size if cursor else 0),
                                                 withscores=True)
            members = [(m.decode(), s) for m, s in chunk]
            if cursor is not None:  # skip what the previous page showed (same score, lex >= id)
                members = [(m, s) for m, s in members
                           if s < cursor.score or (s == cursor.score and m < cursor.job_id)]
            if not members:
                return Page(found, None, total)
            members = members[:CHUNK]
            looked += len(members)
            kept = self._in_all(others, [m for m, _ in members])
            for member, score in members:
                cursor = Cursor(score, member)
                if member in kept:
                    found.append(member)
                    if len(found) == size:
                        break
        more = cursor is not None and self._has_more(primary, low, cursor)
        return Page(found, cursor if more else None, total, truncated=looked >= SCAN_LIMIT)

    def _in_all(self, others: list[str], members: list[str]) -> set[str]:
        if not others:
            return set(members)
        pipe = self.client.pipeline(transaction=False)
        for key in others:
            pipe.zmscore(key, members)
        scores = pipe.execute()
        return {m for i, m in enumerate(members) if all(s[i] is not None for s in scores)}

    def _has_more(self, primary: str, low: str, cursor: Cursor) -> bool:
        rest = self.client.zrevrangebyscore(primary, repr(cursor.score), low, start=0, num=CHUNK,
                                            withscores=True)
        return any(s < cursor.score or m.decode() < cursor.job_id for m, s in rest)

    def counts(self, facet: str, values: tuple[str, ...]) -> dict[str, int]:
        """How many indexed jobs have each value of ``facet`` (one ZCARD each, one round trip)."""
        pipe = self.client.pipeline(transaction=False)
        for value in values:
            pipe.zcard(self.keys.job_index(facet, value))
        return dict(zip(values, (int(n) for n in pipe.execute()), strict=True))
