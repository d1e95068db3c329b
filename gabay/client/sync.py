"""The synchronous client: read jobs back, typed, over one connection pool.

Build one :class:`JobsClient` per process (``JobsClient.from_settings(settings)``, or
:func:`gabay.client.default_client`) and share it between threads: redis-py's pool hands each
thread a connection and keeps it for the next call.
"""

from __future__ import annotations

from typing import TypeVar

from gabay.client.models import FeedbackJob, Job, QuestionJob, typed
from gabay.cluster.connection import connect
from gabay.errors import GabayError
from gabay.jobs import JobStore
from gabay.settings import Settings

KindT = TypeVar("KindT", QuestionJob, FeedbackJob)


class JobsClient:
    """``get`` and ``wait`` on job records, returned as :class:`QuestionJob` / :class:`FeedbackJob`."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    @classmethod
    def from_settings(cls, settings: Settings) -> JobsClient:
        return cls(JobStore(connect(settings), settings))

    def get(self, job_id: str) -> Job:
        """The job's record, typed by its kind; JobNotFound when unknown or expired."""
        return typed(self.store.get(job_id))

    def wait(self, job_id: str, timeout: float) -> Job:
        """The record once the job succeeded or failed.

        Polls with backoff (0.05 s, doubling, at most 1 s between reads); JobNotFinished (with
        the last read as ``.record``) after ``timeout`` seconds, JobNotFound for no such job.
        """
        return typed(self.store.wait(job_id, timeout))

    def questions(self, job_id: str) -> QuestionJob:
        """A question job; GabayError when the id names another kind of job."""
        return _of_kind(self.get(job_id), QuestionJob)

    def feedback(self, job_id: str) -> FeedbackJob:
        """A feedback job; GabayError when the id names another kind of job."""
        return _of_kind(self.get(job_id), FeedbackJob)

    def close(self) -> None:
        self.store.client.close()


def _of_kind(job: Job, model: type[KindT]) -> KindT:
    if not isinstance(job, model):
        raise GabayError(f"job {job.id} is a {job.kind!r} job")
    return job
