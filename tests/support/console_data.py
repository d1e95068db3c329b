"""Jobs for the console tests: records indexed like the store indexes them, a dead letter."""

from __future__ import annotations

import json
import time
import uuid

import redis

from gabay.cluster.job_index import index_created, index_facet
from gabay.jobs import JobRecord, JobStatus, JobStore
from gabay.queues import FORM_RESPONSE
from gabay.settings import Settings


def index_many(client: redis.Redis, settings: Settings, count: int, start: float) -> list[str]:
    """``count`` job records one second apart (newest last): kinds alternate, statuses cycle
    queued/failed/succeeded, every fifth is tenant ``teacher-7``."""
    ids = [f"job-{n:05d}" for n in range(count)]
    for offset in range(0, count, 2000):
        pipe = client.pipeline(transaction=False)
        for n in range(offset, min(count, offset + 2000)):
            kind = "questions" if n % 2 else "feedback"
            status = ("queued", "failed", "succeeded")[n % 3]
            record = JobRecord(id=ids[n], kind=kind, status=JobStatus(status), created_at=start + n,
                               updated_at=start + n)
            pipe.set(settings.keys.job(ids[n]), record.model_dump_json(), ex=3600)
            index_created(pipe, settings.keys, ids[n], kind, status, start + n, settings.job_ttl)
            if n % 5 == 0:
                index_facet(pipe, settings.keys, "tenant", "teacher-7", ids[n], start + n)
        pipe.execute()
    return ids


def dead_letter(client: redis.Redis, settings: Settings, job_id: str) -> str:
    """A failed job whose message sits in the dead-letter queue of form-response-processing."""
    store = JobStore(client, settings)
    store.create("feedback", job_id)
    store.fail(job_id, "gave up after the last retry: Brevo 502")
    redis_id = str(uuid.uuid4())
    message = {"queue_name": FORM_RESPONSE, "actor_name": "process_form_response", "args": [],
               "kwargs": {}, "message_id": job_id, "message_timestamp": 1,
               "options": {"redis_message_id": redis_id, "retries": 8, "traceback": "Traceback..."}}
    keys = settings.keys
    client.zadd(keys.dead_letters(FORM_RESPONSE), {redis_id: time.time() * 1000})
    client.hset(keys.dead_messages(FORM_RESPONSE), redis_id, json.dumps(message))
    return redis_id
