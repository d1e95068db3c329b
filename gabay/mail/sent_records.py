"""The sent record: our own proof, in Redis, that a submission's email went out (at most once).

One hash per submission (``gabay:sent:<job id>``). Before every send an attempt *claims* it:

- ``sent`` -> the email went out before; do nothing (a retry, a duplicate enqueue, a recovered
  message of a killed worker all end here).
- ``sending`` with a live lease -> another attempt is sending right now; come back later.
- ``sending`` with an expired lease -> the previous attempt died or failed while sending, so the
  email may or may not be out. It is sent again with the *same* idempotency key, which Brevo
  deduplicates for 30 minutes, but only while ``uncertain_since`` is younger than the window;
  after it the attempt stops with :class:`EmailUncertain` (a person checks the Brevo logs).
- nothing -> claimed; send.

After the provider accepted the email, ``mark_sent`` stores the outcome before the job returns.
A failure that surely sent nothing (429, 400...) releases the claim and clears the uncertainty it
added; one that may have sent (timeout, 5xx, a crash) leaves ``uncertain_since`` set.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Literal

import redis

from gabay.settings import Settings

#: How long a sent record is kept: a re-enqueue of the same submission within it sends nothing.
SENT_RECORD_TTL = 90 * 24 * 3600
#: Brevo keeps an idempotency key 30 minutes; re-send an uncertain email only within 25.
IDEMPOTENCY_WINDOW = 25 * 60.0


@dataclass(frozen=True)
class Claim:
    status: Literal["claimed", "sent", "busy", "uncertain"]
    owner: str = ""
    wait_seconds: float = 0.0
    record: dict[str, str] | None = None


class SentRecords:
    """Claims, releases and marks the sent records; every change is one Redis transaction."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.lease_seconds = 2 * settings.brevo_timeout + 5

    def key(self, job_id: str) -> str:
        return self.settings.keys.sent(job_id)

    def get(self, job_id: str) -> dict[str, str]:
        raw = self.client.hgetall(self.key(job_id))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def claim(self, job_id: str, *, window: float | None = IDEMPOTENCY_WINDOW) -> Claim:
        """Claim the send; ``window`` None means re-sending is always safe (the file outbox)."""
        key, owner = self.key(job_id), uuid.uuid4().hex
        result: list[Claim] = []

        def attempt(pipe: redis.client.Pipeline) -> None:
            result.clear()
            record = {k.decode(): v.decode() for k, v in pipe.hgetall(key).items()}
            now = time.time()
            if record.get("state") == "sent":
                result.append(Claim("sent", record=record))
                return
            lease = float(record.get("lease_until") or 0)
            if record.get("state") == "sending" and lease > now:
                result.append(Claim("busy", wait_seconds=lease - now, record=record))
                return
            since = record.get("uncertain_since", "")
            if since and window is not None and now - float(since) > window:
                result.append(Claim("uncertain", record=record))
                return
            pipe.multi()
            pipe.hset(key, mapping={
                "state": "sending", "owner": owner, "job_id": job_id, "lease_until": now + self.lease_seconds,
                "uncertain_since": since or now, "uncertain_before": since,
                "attempts": int(record.get("attempts") or 0) + 1,
            })
            pipe.expire(key, SENT_RECORD_TTL)
            result.append(Claim("claimed", owner=owner, record=record))

        self.client.transaction(attempt, key)
        return result[0]

    def release(self, job_id: str, owner: str, *, maybe_sent: bool) -> None:
        """Give the claim up after a failed attempt (only if it is still ours)."""
        key = self.key(job_id)

        def attempt(pipe: redis.client.Pipeline) -> None:
            record = {k.decode(): v.decode() for k, v in pipe.hgetall(key).items()}
            if record.get("state") != "sending" or record.get("owner") != owner:
                return
            pipe.multi()
            pipe.hset(key, "lease_until", 0)
            if not maybe_sent:
                pipe.hset(key, "uncertain_since", record.get("uncertain_before", ""))

        self.client.transaction(attempt, key)

    def mark_sent(self, job_id: str, *, via: str, message_id: str | None = None,
                  outbox_path: str | None = None, note: str = "") -> dict[str, str]:
        """Record the accepted email (whoever claimed last: the email is out either way)."""
        record = {"state": "sent", "via": via, "message_id": message_id or "",
                  "outbox_path": outbox_path or "", "sent_at": str(time.time()), "note": note,
                  "lease_until": "0", "uncertain_since": ""}
        pipe = self.client.pipeline()
        pipe.hset(self.key(job_id), mapping=record)
        pipe.expire(self.key(job_id), SENT_RECORD_TTL)
        pipe.execute()
        return self.get(job_id)
