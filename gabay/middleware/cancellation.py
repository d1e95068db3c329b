"""Cancellation: a job an operator cancelled stops in whichever worker process has it, within 1 s.

Every message of a job carries the job id as its message id. Each worker process reads the new
cancel requests (:mod:`gabay.cluster.cancel_requests`) from one thread: at once when a request is
announced on the ``cancel`` signal channel (:mod:`gabay.cluster.wakeups`), and every ``interval``
seconds (0.25; every ``QUIET_INTERVAL``, 1 s, while the process hears the signals), and then:

- **a waiting message** (in its queue, delayed, retrying, or in a cap's waiting room) is dropped
  when a worker fetches it: acknowledged, never run, the job recorded ``cancelled``;
- **a running job** is interrupted: :class:`JobCancelled` is raised in its worker thread (the way
  Dramatiq's TimeLimit does), which cuts its LLM call in flight (:mod:`gabay.llm.chat` waits in
  short slices and then aborts the HTTP connection); its cap slot is given back by the
  ConcurrencyCaps middleware like after any skipped message, and the job is recorded ``cancelled``;
- **an email being sent is never cut**: once the job's sent record is claimed
  (:mod:`gabay.mail.sent_records`), the interrupt is not raised and the cancel is ignored (noted
  on the job). The job's guard, called right after the claim and before the send, reads the
  request in Redis, so a cancel that races with the claim stops the job before the send, never
  during it.

The guard (``check``, called through :meth:`Ownership.check` before each side effect) also stops a
job whose cancel it finds, without waiting for the interrupt.

Fail closed: a process that could not read the cancel requests for ``stale_after`` seconds (2)
starts no job message: each goes back to its queue without spending a retry (see
``GabayBroker._hold_back``) until Redis answers. A guard that cannot read the request puts the
message back and stops the job. A job already running while Redis is unreachable cannot be told to
stop and runs on (its guards stop it before the next side effect, for want of Redis).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import dramatiq
import redis
from dramatiq import Broker, Middleware, Worker
from dramatiq.middleware import SkipMessage
from dramatiq.middleware.threading import raise_thread_exception

from gabay.cluster.cancel_requests import CancelRequests, JobCancelled
from gabay.cluster.intake import Intake, OwnershipLost
from gabay.cluster.job_index import index_facet
from gabay.cluster.periodic import Periodic
from gabay.errors import JobNotFound
from gabay.jobs import JobRecord, JobStatus, JobStore
from gabay.keys import Keys
from gabay.queues import FORM_RESPONSE, GRADING, QUESTION_QUEUES

logger = logging.getLogger(__name__)

#: The queues whose messages belong to jobs (their message id is the job id).
JOB_QUEUES = frozenset({*QUESTION_QUEUES, FORM_RESPONSE, GRADING})
#: How many failed attempts a job record keeps (newest last).
ATTEMPTS_KEPT = 20
#: Seconds between reads of the cancel requests while requests are announced on the channel:
#: below ``stale_after``, so that a quiet process is never taken for one that cannot read them.
QUIET_INTERVAL = 1.0
#: States of the sent record that mean the email send has started (or is done).
SENDING = (b"sending", b"sent")


class CancelsUnknown(Exception):
    """The cancel requests could not be read lately; the message goes back unstarted."""


@dataclass
class _Run:
    job_id: str
    message: Any
    cancelled: bool = False  # JobCancelled was (or is being) raised for this run
    ignored: bool = False  # the cancel came after the email send started


class Cancellation(Middleware):
    """Drops cancelled waiting messages and interrupts cancelled running jobs (module docstring)."""

    def __init__(self, client: redis.Redis, keys: Keys, store: JobStore, intake: Intake, *,
                 dead_letter_ttl_ms: int, interval: float = 0.25, stale_after: float = 2.0) -> None:
        self.client = client
        self.keys = keys
        self.store = store
        self.intake = intake
        self.requests = CancelRequests(client, keys)
        self.dead_letter_ttl_ms = dead_letter_ttl_ms
        self.interval = interval
        self.stale_after = stale_after
        self._requested: set[str] = set()  # a hint: confirmed in Redis before acting
        self._seen = 0
        self._fresh_at: float | None = None  # monotonic time of the last successful read
        self._runs: dict[int, _Run] = {}  # worker thread id -> the job it runs
        self._tenants: list[tuple[str, str, float]] = []  # (job, tenant, score) to index
        self._lock = threading.Lock()
        self._reader: Periodic | None = None

    # -- boot and shutdown --------------------------------------------------------------------

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self.refresh()
        self._reader = Periodic("gabay-cancel", self.interval, self.refresh,
                                signal=self.intake.signal_event("cancel"),
                                heard=self.intake.wakeups_live, quiet_interval=QUIET_INTERVAL)
        self._reader.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._reader is not None:
            self._reader.stop()

    # -- the index of a job's queue, and its dead letter ----------------------------------------

    def after_enqueue(self, broker: Broker, message: dramatiq.Message, delay: int | None) -> None:
        if message.queue_name not in JOB_QUEUES:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            index_facet(pipe, self.keys, "queue", message.queue_name, message.message_id, time.time())
            pipe.execute()
        except redis.RedisError as exc:  # the index is for the console; the message is queued
            logger.warning("Could not index job %s by queue: %s", message.message_id, exc)

    def after_nack(self, broker: Broker, message: Any) -> None:
        """Remember where a job's message was dead-lettered (what ``gabay retry`` requeues)."""
        if message.queue_name not in JOB_QUEUES or "redis_message_id" not in message.options:
            return
        try:
            self.client.set(self.keys.dead_letter_of(message.message_id),
                            f"{message.queue_name} {message.options['redis_message_id']}",
                            px=self.dead_letter_ttl_ms)
        except redis.RedisError as exc:
            logger.warning("Could not index the dead letter of job %s: %s", message.message_id, exc)

    # -- starts ---------------------------------------------------------------------------------

    def before_process_message(self, broker: Broker, message: dramatiq.Message) -> None:
        if message.queue_name not in JOB_QUEUES:
            return
        fresh_at = self._fresh_at
        if fresh_at is None or time.monotonic() - fresh_at > self.stale_after:
            raise CancelsUnknown("the cancel requests could not be read lately (Redis)")
        job_id = message.message_id
        run = _Run(job_id, message)
        if job_id in self._requested and self.requests.is_requested(job_id):
            logger.info("Job %s was cancelled while it waited; dropping its message %s.", job_id,
                        message.options.get("redis_message_id"))
            run.cancelled = True
            with self._lock:
                self._runs[threading.get_ident()] = run
            raise JobCancelled(f"job {job_id} was cancelled")
        tenant = _tenant_of(broker, message)
        with self._lock:
            self._runs[threading.get_ident()] = run
            if tenant:
                self._tenants.append((job_id, tenant, time.time()))

    def after_process_message(self, broker: Broker, message: dramatiq.Message, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        run = self._finished()
        if run is None or exception is None or isinstance(exception, SkipMessage):
            return
        self._record_attempt(run.job_id, message, exception)

    def after_skip_message(self, broker: Broker, message: dramatiq.Message) -> None:
        run = self._finished()
        if run is not None and run.cancelled:
            self._record_cancelled(run.job_id, message)

    def _finished(self) -> _Run | None:
        ident = threading.get_ident()
        try:
            with self._lock:
                return self._runs.pop(ident, None)
        except JobCancelled:  # raised into this thread just as its job ended
            with self._lock:
                return self._runs.pop(ident, None)

    # -- the guard ------------------------------------------------------------------------------

    def check(self, message: Any) -> None:
        """Raise JobCancelled if the job running in this thread was cancelled (asked in Redis)."""
        if message.queue_name not in JOB_QUEUES:
            return
        with self._lock:
            run = self._runs.get(threading.get_ident())
        try:
            requested = self.requests.is_requested(message.message_id)
        except redis.RedisError as exc:
            self.intake.put_back_or_keep(message.queue_name, [message])
            raise OwnershipLost(f"could not read whether job {message.message_id} was cancelled "
                                f"({type(exc).__name__}); it goes back to its queue") from exc
        if run is not None and run.cancelled:  # interrupted before its email send: stop here
            raise JobCancelled(f"job {message.message_id} was cancelled")
        if not requested or (run is not None and run.ignored):
            return
        if self.client.hget(self.keys.sent(message.message_id), "state") in SENDING:
            if run is not None:
                with self._lock:
                    run.ignored = True
            logger.warning("Cancel of job %s ignored: its email send has started.", message.message_id)
            self._note(message.message_id, "cancel_ignored", "the email send had started")
            return
        if run is not None:
            run.cancelled = True
        raise JobCancelled(f"job {message.message_id} was cancelled")

    # -- the reader thread ----------------------------------------------------------------------

    def refresh(self) -> None:
        """Read new cancel requests, interrupt the cancelled jobs running here, index tenants."""
        try:
            new, self._seen = self.requests.since(self._seen)
            self._index_tenants()
        except redis.RedisError as exc:
            logger.warning("Could not read the cancel requests: %s", type(exc).__name__)
            return
        self._fresh_at = time.monotonic()
        if new:
            self._requested.update(new)
        with self._lock:
            runs = [(ident, run) for ident, run in self._runs.items()
                    if run.job_id in self._requested and not run.cancelled and not run.ignored]
        for ident, run in runs:
            try:
                if self.requests.is_requested(run.job_id):
                    self._interrupt(ident, run)
            except redis.RedisError as exc:
                logger.warning("Could not cancel job %s now: %s", run.job_id, type(exc).__name__)

    def _interrupt(self, ident: int, run: _Run) -> None:
        with self._lock:
            if self._runs.get(ident) is not run or run.cancelled:
                return  # it ended meanwhile
            if self.client.hget(self.keys.sent(run.job_id), "state") in SENDING:
                run.ignored = True
            else:
                run.cancelled = True
                logger.warning("Cancelling running job %s: interrupting its worker thread.", run.job_id)
                raise_thread_exception(ident, JobCancelled)
        if run.ignored:
            logger.warning("Cancel of job %s ignored: its email send has started.", run.job_id)
            self._note(run.job_id, "cancel_ignored", "the email send had started")

    def _index_tenants(self) -> None:
        with self._lock:
            tenants, self._tenants = self._tenants, []
        if not tenants:
            return
        pipe = self.client.pipeline(transaction=False)
        for job_id, tenant, score in tenants:
            index_facet(pipe, self.keys, "tenant", tenant, job_id, score)
        try:
            pipe.execute()
        except redis.RedisError:
            with self._lock:
                self._tenants[:0] = tenants
            raise

    # -- job records ----------------------------------------------------------------------------

    def _record_cancelled(self, job_id: str, message: Any) -> None:
        def change(record: JobRecord) -> None:
            if record.status is JobStatus.SUCCEEDED:
                return  # the interrupt came as the job ended: its outcome stands
            record.status = JobStatus.CANCELLED
            record.error = "cancelled by an operator"
            record.details["cancelled_at"] = time.time()
            record.details["cancelled_in"] = message.queue_name

        self._update(job_id, change)

    def _record_attempt(self, job_id: str, message: Any, exception: BaseException) -> None:
        attempt = {"at": time.time(), "queue": message.queue_name, "actor": message.actor_name,
                   "retries": int(message.options.get("retries", 0)),
                   "error": f"{type(exception).__name__}: {exception}"[:300]}

        def change(record: JobRecord) -> None:
            attempts = list(record.details.get("attempts") or [])[-(ATTEMPTS_KEPT - 1):]
            record.details["attempts"] = [*attempts, attempt]

        self._update(job_id, change)

    def _note(self, job_id: str, name: str, value: str) -> None:
        self._update(job_id, lambda record: record.details.__setitem__(name, value))

    def _update(self, job_id: str, change: Any) -> None:
        try:
            self.store.update(job_id, change)
        except JobNotFound:
            pass
        except Exception as exc:  # a record left behind must not fail or re-run the message
            logger.warning("Could not update job %s: %s", job_id, type(exc).__name__)


def _tenant_of(broker: Broker, message: dramatiq.Message) -> str:
    tenant = message.options.get("tenant")
    if tenant is None:
        tenant_of = broker.get_actor(message.actor_name).options.get("tenant_of")
        if tenant_of is not None:
            try:
                tenant = tenant_of(*message.args, **message.kwargs)
            except Exception:
                tenant = None
    return "" if tenant is None else str(tenant)[:200]
