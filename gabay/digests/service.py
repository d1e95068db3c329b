"""Sending digests exactly once per teacher per period, even across crashes and retries.

:meth:`DigestSender.due` (the fan-out, fired hourly by the default schedules) lists, for every
teacher with an address who did not opt out, the latest period whose digest is due in the
teacher's zone (``time_zone``, else ``SCHEDULE_TIMEZONE``) and has no row yet.
:meth:`DigestSender.send` then, for one (teacher, period kind, period start):

1. claims the row ``digests (teacher, period, start)`` (unique; inserted as ``claimed``): a row
   already ``sent``, ``empty`` or ``opted_out`` ends the attempt, nothing is sent;
2. an opted-out teacher's row becomes ``opted_out``; a period with nothing of the teacher's
   becomes ``empty`` (no email), unless an earlier attempt already began sending;
3. sends through :func:`gabay.mail.delivery.deliver_once` with the row's job id as the sent
   record and an idempotency key derived from it (the feedback email's machinery: a crash after
   the send is found by the sent record or in Brevo's log, never sent twice);
4. marks the row ``sent``.

The store down: StoreUnavailable at step 1, before anything is sent; the message is retried.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from gabay.digests.email import render_digest_email
from gabay.digests.facts import gather
from gabay.digests.periods import Kind, Period, latest_due, period_starting
from gabay.errors import InvalidInput
from gabay.mail.delivery import Guard, Hook, deliver_once
from gabay.mail.mailer import Mailer
from gabay.mail.render import Address
from gabay.mail.sent_records import SentRecords
from gabay.reports.flags import Thresholds
from gabay.settings import Settings
from gabay.store.results import ResultsStore

logger = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("a6d9e2f4-3b1c-4d5e-8f70-1c2b3a4d5e6f")
FINAL_STATES = ("sent", "empty", "opted_out")


def digest_job_id(teacher_id: str, kind: Kind, start: dt.datetime) -> str:
    """One id per (teacher, period kind, period start): the sent record's key."""
    moment = start.astimezone(dt.UTC).isoformat()
    return "dg-" + uuid.uuid5(_NAMESPACE, f"digest:{teacher_id}:{kind}:{moment}").hex


def idempotency_key_for(job_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "email:" + job_id))


@dataclass(frozen=True)
class DueDigest:
    teacher_id: str
    kind: Kind
    period_start: dt.datetime


@dataclass(frozen=True)
class DigestSender:
    settings: Settings
    results: ResultsStore
    records: SentRecords
    mailer: Mailer
    guard: Guard | None = None

    def zone_of(self, teacher: dict[str, object]) -> str:
        return str(teacher.get("time_zone") or self.settings.schedule_timezone)

    def due(self, kind: Kind, now: dt.datetime) -> list[DueDigest]:
        """The digests of ``kind`` due at ``now`` that no row records yet, one per teacher."""
        due: list[DueDigest] = []
        for teacher in self.results.teachers():
            if not teacher.get("email") or teacher.get("digests_opt_out"):
                continue
            period = latest_due(kind, now, self.zone_of(teacher), self.settings.digest_hour)
            due.append(DueDigest(str(teacher["teacher_id"]), kind, period.start))
        if not due:
            return []
        known = self.results.digest_keys(kind, min(d.period_start for d in due))
        return [d for d in due if (d.teacher_id, d.period_start) not in known]

    def send(self, teacher_id: str, kind: Kind, period_start: dt.datetime, hook: Hook | None = None) -> str:
        """Send the teacher's digest of the period once; returns the row's final state."""
        teacher = self.results.teacher(teacher_id)
        if teacher is None:
            raise InvalidInput(f"teacher {teacher_id!r} is not in the results store")
        period = period_starting(kind, period_start, self.zone_of(teacher))
        job_id = digest_job_id(teacher_id, kind, period.start)
        claim = self.results.claim_digest(teacher_id, kind, period.start, job_id)
        if claim.state in FINAL_STATES:
            logger.info("Digest %s of teacher %s: already %s", job_id, teacher_id, claim.state)
            return claim.state
        began = bool(self.records.get(job_id))  # an earlier attempt claimed the email itself
        if not began and (teacher.get("digests_opt_out") or not teacher.get("email")):
            return self._finish(teacher_id, period, "opted_out")
        facts = gather(self.results, teacher_id, period,
                       Thresholds(self.settings.report_easy_above, self.settings.report_hard_below))
        if facts.empty and not began:
            return self._finish(teacher_id, period, "empty")
        address = Address(str(teacher["email"]), str(teacher.get("name") or ""))
        message = render_digest_email(self.settings, facts, address, job_id)
        delivery = deliver_once(self.mailer, self.records, job_id, idempotency_key_for(job_id), message,
                                f"{job_id}.eml", hook, guard=self.guard)
        self.results.finish_digest(teacher_id, kind, period.start, "sent", via=delivery.via,
                                   message_id=delivery.message_id,
                                   outbox_file=delivery.outbox_path.rsplit("/", 1)[-1]
                                   if delivery.outbox_path else None)
        logger.info("Digest %s of teacher %s sent (%s)", job_id, teacher_id, delivery.via)
        return "sent"

    def _finish(self, teacher_id: str, period: Period, state: str) -> str:
        self.results.finish_digest(teacher_id, period.kind, period.start, state)
        logger.info("Digest of teacher %s for %s %s: %s", teacher_id, period.kind,
                    period.start.isoformat(), state)
        return state
