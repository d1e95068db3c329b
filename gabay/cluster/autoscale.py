"""How many worker processes the work needs: pure arithmetic, no Redis, no clock.

A list-length scaler (KEDA's Redis list trigger) asks for workers in proportion to the queue's
length. For a capped or rate-limited actor that is wrong: 10,000 waiting submissions of a 10/min
actor capped at 3 can never use more than 3 worker threads, however deep the queue. So, per queue::

    wanted concurrency = min(running + waiting + held,          # the work there is
                             cap,                               # when every actor is capped
                             ceil(rate x average run time))     # Little's law, when rate-limited
    replicas           = ceil(wanted / threads per process)

A paused queue wants only its running jobs. The cluster total is ``ceil(sum of wanted / threads)``
(each process serves every queue), bounded by ``[minimum, maximum]``. Running jobs count: a process
that scales away takes its running jobs' threads with it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gabay.queues import FORM_RESPONSE, GENERATION, RETRIEVAL
from gabay.settings import Settings

#: The capped or rate-limited actor of each queue, by its name in Redis (``keys.cap_stats``).
#: A queue not listed (validation also runs the uncapped callback actor) is bounded only by its work.
FEEDBACK_ACTOR = "process_form_response"
QUESTION_ACTORS = {RETRIEVAL: "retrieve_passages", GENERATION: "draft_questions"}


@dataclass(frozen=True)
class QueueLimit:
    """What bounds a queue's useful concurrency: a cap, a rate (starts per second), or nothing."""

    actor: str | None = None
    cap: int | None = None
    rate_per_second: float | None = None


@dataclass(frozen=True)
class QueueLoad:
    """One queue's observed work (cluster-wide) and its limit."""

    running: int = 0
    waiting: int = 0
    held: int = 0
    paused: bool = False
    limit: QueueLimit = QueueLimit()
    average_run_seconds: float | None = None


def queue_limits(settings: Settings) -> dict[str, QueueLimit]:
    """The caps and rates of gabay's actors, per queue, as the settings declare them."""
    rate = settings.form_response_rate_limit
    limits = {queue: QueueLimit(actor=actor, cap=settings.question_generation_concurrency)
              for queue, actor in QUESTION_ACTORS.items()}
    limits[FORM_RESPONSE] = QueueLimit(actor=FEEDBACK_ACTOR, cap=settings.form_response_concurrency,
                                       rate_per_second=rate.limit / rate.window_seconds)
    return limits


def wanted_concurrency(load: QueueLoad, default_run_seconds: float) -> int:
    """Worker threads the queue can use now (see the module docstring)."""
    work = load.running if load.paused else load.running + load.waiting + load.held
    bounds = [work]
    if load.limit.cap is not None:
        bounds.append(load.limit.cap)
    if load.limit.rate_per_second is not None:
        run = load.average_run_seconds if load.average_run_seconds else default_run_seconds
        # Little's law: starts per second x seconds per job = jobs in flight; at least one.
        bounds.append(max(1, math.ceil(load.limit.rate_per_second * run - 1e-9)))
    return max(0, min(bounds))


def replicas_for(concurrency: int, threads: int) -> int:
    """Processes of ``threads`` threads that give ``concurrency`` threads."""
    return math.ceil(concurrency / max(threads, 1))


def clamp(replicas: int, minimum: int, maximum: int) -> int:
    return max(minimum, min(maximum, replicas))


def desired_replicas(loads: Mapping[str, QueueLoad], *, threads: int, minimum: int, maximum: int,
                     default_run_seconds: float) -> tuple[int, dict[str, int]]:
    """The cluster's process count (bounded) and each queue's own (unbounded; 0 without work)."""
    wanted = {queue: wanted_concurrency(load, default_run_seconds) for queue, load in loads.items()}
    per_queue = {queue: replicas_for(value, threads) for queue, value in wanted.items()}
    return clamp(replicas_for(sum(wanted.values()), threads), minimum, maximum), per_queue


def busiest(per_queue: Mapping[str, int]) -> Iterable[str]:
    """Queue names with a desired count, largest first (for the reason of a decision)."""
    return (q for q, n in sorted(per_queue.items(), key=lambda item: (-item[1], item[0])) if n)
