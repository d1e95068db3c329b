"""The client API of the platform: job records read back typed, sync (one pool per process) and asyncio.

``gabay.client.get(job_id)`` and ``gabay.client.wait(job_id, timeout)`` use :func:`default_client`,
built on first use over the process's shared job store (:func:`gabay.jobs.shared_store`), so 300
reads are 300 commands on one connection, not 300 connections. Code with its own settings builds
``JobsClient.from_settings(settings)``; asyncio code builds ``AsyncJobsClient.from_settings``.
"""

from __future__ import annotations

import functools

from gabay.client.aio import AsyncJobsClient
from gabay.client.models import FeedbackJob, FeedbackResult, Job, QuestionJob, typed
from gabay.client.sync import JobsClient
from gabay.jobs import shared_store

__all__ = ["AsyncJobsClient", "FeedbackJob", "FeedbackResult", "Job", "JobsClient", "QuestionJob",
           "default_client", "get", "typed", "wait"]


@functools.cache
def default_client() -> JobsClient:
    """This process's client, built on first use (``default_client.cache_clear()`` forgets it)."""
    return JobsClient(shared_store())


def get(job_id: str) -> Job:
    """The job's record, typed (see :meth:`JobsClient.get`)."""
    return default_client().get(job_id)


def wait(job_id: str, timeout: float) -> Job:
    """The record once the job succeeded or failed (see :meth:`JobsClient.wait`)."""
    return default_client().wait(job_id, timeout)
