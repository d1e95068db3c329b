"""What an operator sees of jobs and does to them: pages, one job, cancel, retry, in bulk.

Ids only: a job's view has its status, stages, attempts, LLM calls and references (the stored
result's table and key, the email's provider message id or outbox file name), never a student's
name or address. Error texts are shown with anything shaped like an address replaced.

- **cancel**: refused for a finished job and once the job's email send has started (its sent
  record is claimed); otherwise a cancel request every worker process reads
  (:mod:`gabay.middleware.cancellation`). A job with no message left to run (dead-lettered) is
  recorded ``cancelled`` at once.
- **retry**: a failed or cancelled job whose message is in the dead-letter queue: the message is
  requeued with its ids (:mod:`gabay.console.dead_letters`), the job goes back to ``queued`` and
  any cancel request for it is withdrawn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal

import redis

from gabay.alerts.notification import scrub
from gabay.cluster.cancel_requests import CancelRequests
from gabay.cluster.job_index import Cursor, JobIndex, JobQuery, Page
from gabay.console.dead_letters import DeadLetters
from gabay.errors import JobNotFound
from gabay.jobs import JobRecord, JobStatus, JobStore
from gabay.keys import Keys
from gabay.queues import FORM_RESPONSE, GRADING, QUESTION_QUEUES

JOB_QUEUES = (*QUESTION_QUEUES, GRADING, FORM_RESPONSE)
KINDS = ("questions", "feedback")
Action = Literal["cancel", "retry"]
ACTIONS: tuple[Action, ...] = ("cancel", "retry")
#: Most jobs one bulk action takes.
BULK_LIMIT = 200


@dataclass(frozen=True)
class Outcome:
    """What an action did to one job: ``ok`` and a one-line message naming the job."""

    job_id: str
    ok: bool
    message: str


class JobConsole:
    """The console's reads and actions, on one Redis client."""

    def __init__(self, client: redis.Redis, store: JobStore, keys: Keys) -> None:
        self.client = client
        self.store = store
        self.keys = keys
        self.index = JobIndex(client, keys)
        self.cancels = CancelRequests(client, keys)
        self.dead = DeadLetters(client, keys, JOB_QUEUES)

    # -- reads ----------------------------------------------------------------------------------

    def page(self, query: JobQuery, size: int = 50, after: Cursor | None = None
             ) -> tuple[list[dict[str, Any]], Page]:
        """One page of job summaries (newest first) and where it ends."""
        page = self.index.page(query, size, after)
        raw = self.client.mget([self.keys.job(i) for i in page.ids]) if page.ids else []
        rows = [summary(JobRecord.model_validate_json(r)) for r in raw if r is not None]
        return rows, page

    def status_counts(self) -> dict[str, int]:
        return self.index.counts("status", tuple(s.value for s in JobStatus))

    def view(self, job_id: str) -> dict[str, Any]:
        """Everything the job page shows (JobNotFound when unknown or expired)."""
        record = self.store.get(job_id)
        view = summary(record)
        view.update(
            created_at=record.created_at,
            stages=[{"name": name, "started_at": t.started_at, "finished_at": t.finished_at,
                     "seconds": t.seconds} for name, t in record.stages.items()],
            calls=[{"stage": c.stage, "provider": c.provider, "model": c.model,
                    "prompt_tokens": c.prompt_tokens, "cached_tokens": c.cached_tokens,
                    "completion_tokens": c.completion_tokens, "cost_usd": c.cost_usd,
                    "duration_ms": c.duration_ms, "ok": c.ok,
                    "error": scrub(c.error, 300) if c.error else None} for c in record.calls],
            attempts=[{**a, "error": scrub(str(a.get("error", "")), 300)}
                      for a in record.details.get("attempts") or [] if isinstance(a, dict)],
            references=references(record),
            cancel_requested=self.cancels.is_requested(job_id),
            cancel_ignored=record.details.get("cancel_ignored"),
            dead_letter=self._dead_letter(job_id),
            callback=_callback(record),
            questions=question_scores(record),
        )
        view["can_cancel"] = self._cancel_refusal(record) is None
        view["can_retry"] = view["dead_letter"] is not None and record.status in RETRYABLE
        return view

    def _dead_letter(self, job_id: str) -> dict[str, Any] | None:
        letter = self.dead.find(job_id)
        if letter is None:
            return None
        options = letter.data.get("options", {})
        return {"queue": letter.queue, "redis_message_id": letter.redis_id,
                "actor": letter.data.get("actor_name"), "retries": options.get("retries", 0)}

    # -- actions --------------------------------------------------------------------------------

    def act(self, action: Action, job_id: str) -> Outcome:
        return self.cancel(job_id) if action == "cancel" else self.retry(job_id)

    def bulk(self, action: Action, job_ids: list[str]) -> list[Outcome]:
        return [self.act(action, job_id) for job_id in dict.fromkeys(job_ids[:BULK_LIMIT])]

    def cancel(self, job_id: str) -> Outcome:
        try:
            record = self.store.get(job_id)
        except JobNotFound as exc:
            return Outcome(job_id, False, str(exc))
        refusal = self._cancel_refusal(record)
        if refusal is not None:
            return Outcome(job_id, False, f"job {job_id} not cancelled: {refusal}")
        self.cancels.request(job_id)
        if record.status is JobStatus.FAILED or self.dead.find(job_id) is not None:
            self._mark_cancelled(job_id)  # nothing of it will run: cancelled now
            return Outcome(job_id, True, f"job {job_id} cancelled")
        return Outcome(job_id, True, f"job {job_id}: cancel requested; a waiting message is "
                                     "dropped when fetched, a running one is interrupted")

    def retry(self, job_id: str) -> Outcome:
        try:
            record = self.store.get(job_id)
        except JobNotFound as exc:
            return Outcome(job_id, False, str(exc))
        if record.status not in RETRYABLE:
            return Outcome(job_id, False, f"job {job_id} not retried: it is {record.status.value} "
                                          "(only failed or cancelled jobs are retried)")
        letter = self.dead.find(job_id)
        if letter is None:
            return Outcome(job_id, False, f"job {job_id} not retried: no dead-lettered message "
                                          "(expired after 7 days, or never dead-lettered)")
        self.cancels.withdraw(job_id)

        def reopen(r: JobRecord) -> None:
            r.status, r.error = JobStatus.QUEUED, None
            r.details["retried_at"] = time.time()
            r.details["retried_by_operator"] = int(r.details.get("retried_by_operator", 0)) + 1

        self.store.update(job_id, reopen)
        if not self.dead.requeue(letter):
            return Outcome(job_id, False, f"job {job_id} not retried: its message left the "
                                          "dead-letter queue meanwhile")
        return Outcome(job_id, True, f"job {job_id} requeued on {letter.queue} (message "
                                     f"{letter.redis_id})")

    def _cancel_refusal(self, record: JobRecord) -> str | None:
        if record.status in (JobStatus.SUCCEEDED, JobStatus.CANCELLED):
            return f"it is {record.status.value} already"
        state = self.client.hget(self.keys.sent(record.id), "state")
        if state in (b"sending", b"sent"):
            return "its email send has started"
        return None

    def _mark_cancelled(self, job_id: str) -> None:
        def change(r: JobRecord) -> None:
            r.status, r.error = JobStatus.CANCELLED, "cancelled by an operator"
            r.details["cancelled_at"] = time.time()

        self.store.update(job_id, change)


RETRYABLE = (JobStatus.FAILED, JobStatus.CANCELLED)


def summary(record: JobRecord) -> dict[str, Any]:
    """One row of the jobs list: ids, status and totals."""
    return {"id": record.id, "kind": record.kind, "status": record.status.value,
            "stage": record.stage, "created_at": record.created_at,
            "updated_at": record.updated_at, "tokens": record.total_tokens,
            "cost_usd": record.cost_usd, "calls": len(record.calls),
            "error": scrub(record.error, 300) if record.error else None}


def question_scores(record: JobRecord) -> list[dict[str, Any]]:
    """Each accepted question of a question job with the scores it passed the quality gate with.

    The questions are the teacher's document's, not anyone's personal data; the rejected drafts
    and their reasons are in the stored result (``question_results.rejected``).
    """
    result = record.result if record.kind == "questions" and isinstance(record.result, dict) else {}
    rows = []
    for number, question in enumerate(result.get("questions") or [], start=1):
        if not isinstance(question, dict):
            continue
        found = question.get("quality")
        quality: dict[str, Any] = found if isinstance(found, dict) else {}
        found_trip = quality.get("round_trip")
        trip: dict[str, Any] | None = found_trip if isinstance(found_trip, dict) else None
        verdict = "-" if trip is None else "agrees" if trip.get("agreed") else "disagrees"
        rows.append({"number": number, "type": question.get("type", ""),
                     "question": scrub(str(question.get("question", "")), 120),
                     "level": quality.get("bloom_level") or question.get("bloom_level") or "-",
                     "flaws": len(quality.get("flaws") or []),
                     "round_trip": verdict if trip is None else f"{verdict} ({trip.get('by', '')})"})
    return rows


def references(record: JobRecord) -> list[dict[str, str]]:
    """Where the job's outcome is: the stored row, the email (provider id or outbox file name)."""
    found = []
    stored = record.details.get("stored")
    if isinstance(stored, dict) and stored.get("table"):
        found.append({"what": "stored result", "value": f"{stored['table']} {stored.get('key', '')}"})
    result = record.result or {}
    if result.get("message_id"):
        found.append({"what": f"email ({result.get('via') or 'provider'} message id)",
                      "value": str(result["message_id"])})
    if result.get("outbox_path"):
        found.append({"what": "email (outbox file)", "value": PurePath(str(result["outbox_path"])).name})
    for key in ("response_id", "document_id"):
        if isinstance(record.details.get(key), str):
            found.append({"what": key.replace("_", " "), "value": record.details[key]})
    return found


def _callback(record: JobRecord) -> dict[str, Any] | None:
    callback = getattr(record, "callback", None)
    if callback is None:
        return None
    return {"state": callback.state, "attempts": callback.attempts,
            "last_error": scrub(callback.last_error, 300) if callback.last_error else None}
