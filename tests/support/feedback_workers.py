"""Helpers for tests that run the form response worker in real dramatiq processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis

from gabay.jobs import JobRecord, JobStatus, JobStore
from gabay.queues import FORM_RESPONSE
from gabay.settings import Settings
from tests.fakes.brevo_server import FakeBrevo
from tests.support.polling import wait_for

MODULES = ("tests.support.actors", "tests.support.feedback_actors")


def worker_env(outbox: Path, brevo: FakeBrevo | None = None) -> dict[str, str]:
    """Environment of feedback workers: no rate limit in the way, a test outbox, maybe Brevo."""
    env = {"FORM_RESPONSE_RATE_LIMIT": "100/s", "EMAIL_OUTBOX_DIR": str(outbox), "BREVO_TIMEOUT": "2"}
    if brevo is not None:
        env.update(BREVO_API_KEY=brevo.api_key, BREVO_BASE_URL=brevo.base_url)
    return env


def wait_for_job(client: redis.Redis, settings: Settings, job_id: str, status: JobStatus,
                 timeout: float = 60.0) -> JobRecord:
    store = JobStore(client, settings)

    def reached() -> JobRecord | None:
        record = store.get(job_id) if client.exists(store.key(job_id)) else None
        return record if record is not None and record.status is status else None

    return wait_for(reached, timeout=timeout, message=f"job {job_id} to be {status.value}")


def dead_letters(client: redis.Redis, namespace: str) -> list[dict[str, Any]]:
    """The messages in the dead-letter queue of ``form-response-processing``."""
    raw = client.hvals(f"{namespace}:{FORM_RESPONSE}.XQ.msgs")
    return [json.loads(r) for r in raw]
