"""Rules about queues, from the cluster status: too deep, waiting too long, nobody consuming.

- ``queue_depth``: more than ``ALERT_QUEUE_DEPTH`` messages wait (ready, not fetched) in a queue,
  paused or not (a paused queue still fills Redis's memory).
- ``queue_age``: the oldest waiting message of a queue that is not paused was enqueued more than
  ``ALERT_QUEUE_AGE`` seconds ago.
- ``no_consumer``: a queue has waiting or delayed work and no live, non-draining worker process
  consumes it, for ``ALERT_NO_CONSUMER_AFTER`` seconds (a rolling restart does not alert).
  ``form-response-processing`` is exempt while ``ENABLE_FORM_RESPONSE_WORKER`` is false.
"""

from __future__ import annotations

import json

from gabay.alerts.notification import Finding, Severity
from gabay.alerts.rules import ClusterView
from gabay.queues import FORM_RESPONSE


class QueueDepth:
    name = "queue_depth"
    severity: Severity = "warning"
    hold_s = 0.0

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold

    def check(self, view: ClusterView) -> list[Finding]:
        return [Finding(queue, f"queue {queue!r} has {status.waiting} waiting messages "
                               f"(threshold {self.threshold})",
                        {"queue": queue, "waiting": status.waiting, "delayed": status.delayed,
                         "consumers": status.consumers, "paused": status.paused,
                         "threshold": self.threshold})
                for queue, status in view.status.per_queue.items() if status.waiting > self.threshold]


class QueueAge:
    name = "queue_age"
    severity: Severity = "warning"
    hold_s = 0.0

    def __init__(self, threshold_s: float) -> None:
        self.threshold_s = threshold_s

    def check(self, view: ClusterView) -> list[Finding]:
        findings = []
        for queue, status in view.status.per_queue.items():
            if not status.waiting or status.paused:
                continue
            age = oldest_waiting_age(view, queue)
            if age > self.threshold_s:
                findings.append(Finding(
                    queue, f"the oldest message of queue {queue!r} has waited {age:.0f} s "
                           f"(threshold {self.threshold_s:g} s)",
                    {"queue": queue, "oldest_age_s": round(age, 1), "waiting": status.waiting,
                     "consumers": status.consumers, "threshold_s": self.threshold_s}))
        return findings


class NoConsumer:
    name = "no_consumer"
    severity: Severity = "critical"

    def __init__(self, after_s: float, enable_form_response_worker: bool) -> None:
        self.hold_s = after_s
        self.enable_form_response_worker = enable_form_response_worker

    def check(self, view: ClusterView) -> list[Finding]:
        findings = []
        for queue, status in view.status.per_queue.items():
            if queue == FORM_RESPONSE and not self.enable_form_response_worker:
                continue
            if status.consumers == 0 and (status.waiting or status.delayed):
                findings.append(Finding(
                    queue, f"no live worker consumes queue {queue!r} ({status.waiting} waiting, "
                           f"{status.delayed} delayed)",
                    {"queue": queue, "waiting": status.waiting, "delayed": status.delayed,
                     "live_workers": view.status.workers.worker_count}))
        return findings


def oldest_waiting_age(view: ClusterView, queue: str) -> float:
    """Seconds since the message at the head of ``queue`` was enqueued (0 when unknown)."""
    head = view.client.lindex(view.keys.queue(queue), 0)
    raw = view.client.hget(view.keys.messages(queue), head) if head is not None else None
    if raw is None:
        return 0.0
    try:
        return max(view.now - int(json.loads(raw)["message_timestamp"]) / 1000, 0.0)
    except (ValueError, KeyError, TypeError):
        return 0.0
