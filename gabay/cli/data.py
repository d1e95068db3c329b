"""``gabay data``: personal data: forget a student, apply ``DATA_RETENTION_DAYS``.

``forget --student ID`` (a stored student id ``st-...`` or the student's email address, turned
into that id) removes the student's submissions from the results store, their feedback job
records from Redis (found through the store, and by the recipient of every feedback job record
still in Redis) and their emails in the file outbox (by the stored file names, and by the ``To``
of every ``.eml`` file), and the payloads of their messages still queued or dead-lettered (the
claim checks of gabay.cluster.claim_check; such a message then dead-letters). Output names the
pseudonymous id and counts, never an address or name.
Kept: the exams, the cost ledger (no personal data) and the sent records (which only say that a
job's email went out, and keep a re-enqueued submission from being mailed twice).
"""

from __future__ import annotations

import email.policy
import json
import logging
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path

import click
import redis

from gabay.cli import get_redis, get_settings, main
from gabay.cluster.claim_check import ClaimCheck
from gabay.keys import Keys
from gabay.mail.outbox import eml_name
from gabay.settings import Settings
from gabay.store.identity import as_person_id, person_id
from gabay.store.results import ResultsStore
from gabay.store.retention import apply_retention

logger = logging.getLogger(__name__)
SCAN_BATCH = 500


@dataclass
class Forgotten:
    """What ``forget_student`` removed."""

    student_id: str
    submissions: int = 0
    job_records: list[str] = field(default_factory=list)
    outbox_files: list[str] = field(default_factory=list)
    claim_checks: int = 0  # payloads of messages still queued or dead-lettered


def forget_student(settings: Settings, client: redis.Redis, results: ResultsStore,
                   student: str) -> Forgotten:
    """Remove one student's rows, job records and outbox emails (``student``: id or address)."""
    target = as_person_id(student)
    rows = results.forget_student(target)
    outcome = Forgotten(target, submissions=len(rows))
    known_jobs = {row.job_id for row in rows}
    outcome.job_records = _forget_job_records(client, settings.keys, target, known_jobs)
    names = {row.outbox_file or eml_name(row.response_id, row.job_id) for row in rows}
    outcome.outbox_files = _forget_outbox_files(settings.outbox_dir, target, names)
    outcome.claim_checks = ClaimCheck(client, settings.keys, settings.claim_check_ttl).forget(target)
    logger.info("Forgot student %s: %d submissions, %d job records, %d outbox files", target,
                outcome.submissions, len(outcome.job_records), len(outcome.outbox_files))
    return outcome


def _forget_job_records(client: redis.Redis, keys: Keys, target: str, known: set[str]) -> list[str]:
    """Delete the feedback job records of the student: known ids, or mailed to the student."""
    removed: list[str] = []
    batch: list[bytes] = []

    def flush() -> None:
        for key, data in zip(batch, client.mget(batch), strict=True):
            job_id = key.decode().removeprefix(keys.job(""))
            if data is not None and (job_id in known or _mailed_to(data, target)):
                client.delete(key)
                client.zrem(keys.recent_jobs, job_id)
                removed.append(job_id)
        batch.clear()

    for key in client.scan_iter(match=keys.job("*"), count=SCAN_BATCH):
        batch.append(key)
        if len(batch) >= SCAN_BATCH:
            flush()
    if batch:
        flush()
    return sorted(removed)


def _mailed_to(data: bytes, target: str) -> bool:
    """True for a feedback job record whose email went to the student ``target``."""
    try:
        record = json.loads(data)
    except ValueError:
        return False
    result = record.get("result") if isinstance(record, dict) else None
    if record.get("kind") != "feedback" or not isinstance(result, dict):
        return False
    to = result.get("to")
    return isinstance(to, str) and person_id(to) == target


def _forget_outbox_files(outbox: Path, target: str, names: set[str]) -> list[str]:
    """Delete the student's ``.eml`` files: the stored names, and any addressed to the student."""
    if not outbox.is_dir():
        return []
    removed = []
    parser = BytesHeaderParser(policy=email.policy.default)
    for path in sorted(outbox.glob("*.eml")):
        if path.name not in names:
            with open(path, "rb") as handle:
                headers = parser.parse(handle)
            addresses = getattr(headers["To"], "addresses", ()) if headers["To"] else ()
            if not any(person_id(a.addr_spec) == target for a in addresses):
                continue
        path.unlink(missing_ok=True)
        removed.append(path.name)
    return removed


@main.group()
def data() -> None:
    """Personal data in the results store, the job records and the outbox."""


@data.command("forget")
@click.option("--student", required=True, help="the student's id (st-...) or email address")
@click.pass_context
def forget_command(ctx: click.Context, student: str) -> None:
    """Delete a student's submissions, feedback job records and outbox emails."""
    settings = get_settings(ctx)
    results = ResultsStore.from_settings(settings)
    try:
        outcome = forget_student(settings, get_redis(ctx), results, student)
    finally:
        results.dispose()
    click.echo(f"forgot student {outcome.student_id}: {outcome.submissions} stored submissions, "
               f"{len(outcome.job_records)} job records, {len(outcome.outbox_files)} outbox files"
               + (f", {outcome.claim_checks} queued payloads" if outcome.claim_checks else ""))


@data.command("retention")
@click.pass_context
def retention_command(ctx: click.Context) -> None:
    """Anonymise stored submissions older than DATA_RETENTION_DAYS (run it daily)."""
    settings = get_settings(ctx)
    if settings.data_retention_days is None:
        click.echo("DATA_RETENTION_DAYS is not set: nothing expires")
        return
    results = ResultsStore.from_settings(settings)
    try:
        changed = apply_retention(results, settings)
    finally:
        results.dispose()
    click.echo(f"anonymised {changed} submissions older than {settings.data_retention_days} days")
