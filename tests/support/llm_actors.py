"""A test actor that runs a real question stage, then SIGKILLs its own worker once.

``draft_then_die(task)`` runs the generation stage (one paid call, checkpointed on the job record
as it completes); the first time, its worker process then kills itself with SIGKILL before
acknowledging the message (a flag in Redis makes "first" hold across processes). The message is
recovered by another worker and the stage runs again: its paid call must not be made again.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import dramatiq

from gabay.actors import broker, settings
from gabay.jobs import JobStore
from gabay.questions.models import QuestionTask
from gabay.questions.stages import QuestionStages

LLM_TEST_QUEUE = "gabay-llm-test"


@dramatiq.actor(actor_name="llm_draft_then_die", queue_name=LLM_TEST_QUEUE, max_retries=3, min_backoff=100)
def draft_then_die(task: dict[str, Any]) -> None:
    store = JobStore(broker.client, settings)
    stages = QuestionStages(store, settings)
    drafted = stages.draft(QuestionTask.model_validate(task))
    if broker.client.set(settings.keys.test("llm-die"), os.getpid(), nx=True):
        os.kill(os.getpid(), signal.SIGKILL)
    store.succeed(drafted.job_id, {"drafts": len(drafted.drafts)})
