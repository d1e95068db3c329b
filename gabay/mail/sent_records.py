"""The sent record: our own proof, in Redis, that a submission's email went out (at most once).

One hash per submission (``gabay:sent:<job id>``). Before every send an attempt *claims* it:

- ``sent`` -> the email went out before; do nothing (a retry, a duplicate enqueue, a recovered
  message of a killed worker all end here).
- ``sending`` with a live lease -> another attempt is sending right now; come back later.
- ``sending`` with an expired lease, or released after a failure that may have sent
  (``uncertain_since`` set) -> the email may or may not be out. The claim says so
  (:attr:`Claim.maybe_sent_before`) and when an earlier attempt could last have reached the
  provider (:attr:`Claim.settle_from`: the release of the last such attempt, or the end of the
  lease of one that died); :func:`gabay.mail.delivery.deliver_once` asks the provider's log
  before sending again.
- nothing -> claimed; send.

Right before the send, :meth:`SentRecords.confirm` checks that the claim is still ours and its
lease still runs, and renews the lease for the send: an attempt frozen past its lease sends
nothing. After the provider accepted the email, ``mark_sent`` stores the outcome before the job
returns. A failure that surely sent nothing (429, 400, a log look-up, a lost claim...) releases
the claim and clears the uncertainty it added; one that may have sent (timeout, 5xx, a crash)
leaves ``uncertain_since`` set and moves ``maybe_sent_until`` to its end.
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


@dataclass(frozen=True)
class Claim:
    """The outcome of :meth:`SentRecords.claim`; the times are epoch seconds, 0 when unknown."""

    status: Literal["claimed", "sent", "busy"]
    owner: str = ""
    wait_seconds: float = 0.0
    record: dict[str, str] | None = None
    #: When the first attempt that may have sent this email claimed it (0: none may have).
    uncertain_since: float = 0.0
    #: The latest moment an earlier attempt may have reached the provider.
    settle_from: float = 0.0

    @property
    def maybe_sent_before(self) -> bool:
        return self.uncertain_since > 0


class SentRecords:
    """Claims, confirms, releases and marks the sent records; every change is one Redis transaction.

    ``lease_seconds`` covers a log look-up and the send's answer: the claim holds it, and
    :meth:`confirm` renews it right before the send.
    """

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.lease_seconds = 2 * settings.brevo_timeout + 5

    def key(self, job_id: str) -> str:
        return self.settings.keys.sent(job_id)

    def get(self, job_id: str) -> dict[str, str]:
        raw = self.client.hgetall(self.key(job_id))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def claim(self, job_id: str) -> Claim:
        """Claim the send (``claimed``), unless it was sent (``sent``) or is being sent (``busy``)."""
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
            settle_from = _settle_from(record, lease) if since else 0.0
            pipe.multi()
            pipe.hset(key, mapping={
                "state": "sending", "owner": owner, "job_id": job_id, "lease_until": now + self.lease_seconds,
                "uncertain_since": since or now, "uncertain_before": since,
                "maybe_sent_until": settle_from or "",
                "attempts": int(record.get("attempts") or 0) + 1,
            })
            pipe.expire(key, SENT_RECORD_TTL)
            result.append(Claim("claimed", owner=owner, record=record,
                                uncertain_since=float(since or 0), settle_from=settle_from))

        self.client.transaction(attempt, key)
        return result[0]

    def confirm(self, job_id: str, owner: str) -> bool:
        """Renew our lease for the send; False when the claim is no longer ours or its lease ran out.

        Checked and renewed in one transaction: a claim taken over (or about to be, its lease
        expired) by another attempt never sends.
        """
        key = self.key(job_id)
        result: list[bool] = []

        def attempt(pipe: redis.client.Pipeline) -> None:
            result.clear()
            record = {k.decode(): v.decode() for k, v in pipe.hgetall(key).items()}
            now = time.time()
            ours = record.get("state") == "sending" and record.get("owner") == owner
            if not ours or float(record.get("lease_until") or 0) <= now:
                result.append(False)
                return
            pipe.multi()
            pipe.hset(key, "lease_until", now + self.lease_seconds)
            result.append(True)

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
            if maybe_sent:
                pipe.hset(key, "maybe_sent_until", time.time())
            else:
                pipe.hset(key, "uncertain_since", record.get("uncertain_before", ""))

        self.client.transaction(attempt, key)

    def mark_sent(self, job_id: str, *, via: str, message_id: str | None = None,
                  outbox_path: str | None = None, note: str = "") -> dict[str, str]:
        """Record the accepted email (whoever claimed last: the email is out either way)."""
        record = {"state": "sent", "via": via, "message_id": message_id or "",
                  "outbox_path": outbox_path or "", "sent_at": str(time.time()), "note": note,
                  "lease_until": "0", "uncertain_since": "", "maybe_sent_until": ""}
        pipe = self.client.pipeline()
        pipe.hset(self.key(job_id), mapping=record)
        pipe.expire(self.key(job_id), SENT_RECORD_TTL)
        pipe.execute()
        return self.get(job_id)


def _settle_from(record: dict[str, str], lease: float) -> float:
    """The latest moment an earlier attempt may have reached the provider.

    The release of the last attempt that may have sent, or the end of the lease of one that died
    without releasing; at least the first uncertain claim (records written before this field).
    """
    died = lease if record.get("state") == "sending" else 0.0
    return max(float(record.get("maybe_sent_until") or 0), died, float(record.get("uncertain_since") or 0))
