"""Rule ``dead_letter``: a queue's messages reached Dramatiq's dead-letter set.

Read from Dramatiq's own layout: ``<ns>:<queue>.XQ`` (the broker's ``redis_message_id`` of each
message, scored by the time it was dead-lettered, milliseconds) and ``<ns>:<queue>.XQ.msgs`` (the
messages). The incident of a queue is open while it has a message dead-lettered within
``ALERT_DEAD_LETTER_WINDOW`` seconds: the first dead letter fires, more during the incident update
it silently, and it resolves once the window passed without one (or the messages were requeued or
deleted). The alert names the latest messages by their Dramatiq message id, actor and exception
class (from gabay's recent-failures list), never their arguments, which hold student data.
"""

from __future__ import annotations

import json
from typing import Any

from gabay.alerts.notification import Finding, Severity, scrub
from gabay.alerts.rules import ClusterView
from gabay.cluster.stats import QueueStats
from gabay.keys import DELAY_SUFFIX
from gabay.queues import ALL_QUEUES

LATEST = 5


class DeadLetters:
    name = "dead_letter"
    severity: Severity = "warning"
    #: A worker publishes the failure's reason a quarter second after the nack: wait for it.
    hold_s = 1.0

    def __init__(self, window_s: float, stats: QueueStats) -> None:
        self.window_s = window_s
        self.stats = stats

    def check(self, view: ClusterView) -> list[Finding]:
        since_ms = view.now_ms - int(self.window_s * 1000)
        queues = sorted(set(ALL_QUEUES) | known_queues(view))
        with view.client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.zcount(view.keys.dead_letters(queue), since_ms, "+inf")
                pipe.zrevrangebyscore(view.keys.dead_letters(queue), "+inf", since_ms,
                                      start=0, num=LATEST)
            replies = pipe.execute()
        findings = []
        reasons: dict[str, str] | None = None
        for index, queue in enumerate(queues):
            count, ids = int(replies[2 * index]), [i.decode() for i in replies[2 * index + 1]]
            if not count:
                continue
            if reasons is None:
                reasons = {f.message_id: f.reason for f in self.stats.recent_failures(limit=200)}
            latest = self._describe(view, queue, ids, reasons)
            findings.append(Finding(
                queue, f"{count} message(s) of queue {queue!r} dead-lettered in the last "
                       f"{self.window_s / 60:g} min",
                {"queue": queue, "count": count, "latest": latest}))
        return findings

    @staticmethod
    def _describe(view: ClusterView, queue: str, ids: list[str],
                  reasons: dict[str, str]) -> list[dict[str, Any]]:
        raw = view.client.hmget(view.keys.dead_messages(queue), ids) if ids else []
        described = []
        for redis_id, data in zip(ids, raw, strict=True):
            actor, message_id = "", redis_id
            if data is not None:
                try:
                    decoded = json.loads(data)
                    actor = str(decoded.get("actor_name", ""))
                    message_id = str(decoded.get("message_id") or redis_id)
                except (ValueError, AttributeError):
                    pass
            described.append({"message_id": message_id, "actor": actor,
                              "error": error_class(reasons.get(message_id, ""))})
        return described


def error_class(reason: str) -> str:
    """``InvalidInput`` of ``InvalidInput: submission ...``: the class only, never the text."""
    head = reason.partition(":")[0].strip()
    return scrub(head, 100) if head.isidentifier() else ""


def known_queues(view: ClusterView) -> set[str]:
    """Every queue some worker process ever consumed (test and custom actors' queues too)."""
    return {q.decode().removesuffix(DELAY_SUFFIX) for q in view.client.smembers(view.keys.consumed_queues)}
