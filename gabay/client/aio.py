"""The asyncio client, for FastAPI-style callers: the API of :class:`~gabay.client.sync.JobsClient`, awaited.

Build one per event loop, at start-up (a FastAPI lifespan), and close it at shutdown::

    jobs = AsyncJobsClient.from_settings(load_settings())
    job = await jobs.wait(job_id, timeout=30)
    await jobs.aclose()

It reads the same records with ``redis.asyncio`` over one connection pool; waiting never
blocks the loop. Enqueueing stays ``actor.send(payload)`` (about a millisecond of Redis work);
from a coroutine, ``await asyncio.to_thread(generate_questions.send, request)``.
"""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from gabay.client.connection import connect_async
from gabay.client.models import FeedbackJob, Job, QuestionJob, parse_job
from gabay.client.sync import _of_kind
from gabay.errors import JobNotFound
from gabay.jobs import POLL_MAX_SECONDS, POLL_SECONDS, not_finished
from gabay.keys import Keys
from gabay.settings import Settings


class AsyncJobsClient:
    """``await get(job_id)`` and ``await wait(job_id, timeout)``, typed like the sync client."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    @classmethod
    def from_settings(cls, settings: Settings) -> AsyncJobsClient:
        return cls(connect_async(settings), settings.keys)

    async def get(self, job_id: str) -> Job:
        """The job's record, typed by its kind; JobNotFound when unknown or expired."""
        data = await self.client.get(self.keys.job(job_id))
        if data is None:
            raise JobNotFound(f"no job {job_id!r} (unknown or expired)")
        return parse_job(data)

    async def wait(self, job_id: str, timeout: float) -> Job:
        """The record once the job succeeded or failed; JobNotFinished after ``timeout`` seconds.

        Polls with the sync client's backoff (0.05 s, doubling, at most 1 s), sleeping with
        ``asyncio.sleep``.
        """
        deadline = time.monotonic() + timeout
        pause = POLL_SECONDS
        while True:
            job = await self.get(job_id)
            if job.finished:
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                raise not_finished(job, timeout)
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, POLL_MAX_SECONDS)

    async def questions(self, job_id: str) -> QuestionJob:
        return _of_kind(await self.get(job_id), QuestionJob)

    async def feedback(self, job_id: str) -> FeedbackJob:
        return _of_kind(await self.get(job_id), FeedbackJob)

    async def aclose(self) -> None:
        await self.client.close(close_connection_pool=True)
