"""The JSON API: read endpoints, the queue actions, and the health probe.

Every answer is JSON; errors are ``{"error": ..., "status": ...}`` with the matching HTTP status.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from gabay.queues import ALL_QUEUES, check_queue_names
from gabay.web import view
from gabay.web.private import operator_record
from gabay.web.responses import json_error, json_response
from gabay.web.sources import Sources

ENDPOINTS = {
    "GET /api/status": "cluster status (the shape of `gabay status --json`)",
    "GET /api/queues": "per-queue counts: waiting, delayed, running, dead_lettered, paused, ...",
    "GET /api/queues/<name>/throughput?minutes=60": "[minute, completed, failed] per minute",
    "GET /api/workers": "the worker registry: one entry per live worker process",
    "GET /api/jobs?limit=20": "the newest jobs, summarised",
    "GET /api/jobs/<id>": "one job record (404 when unknown or expired)",
    "GET /api/failures?limit=20": "recent final failures with their reasons",
    "GET /api/llm": "LLM calls, tokens and cost per provider and model",
    "GET /api/schedules": "scheduled jobs: next runs in their zone, last run and outcome, leader",
    "GET /api/exams": "exams of the results store: submissions stored and counted, last analysis",
    "GET /api/exams/<form_id>/analytics": "an exam's latest analytics report (404 when none)",
    "GET /api/csrf": "a CSRF token for this session (sets the session cookie)",
    "POST /api/queues/<name>/pause": "pause one queue (needs the CSRF token)",
    "POST /api/queues/<name>/resume": "resume one queue (needs the CSRF token)",
    "POST /api/pause": "pause every queue (needs the CSRF token)",
    "POST /api/resume": "resume every queue (needs the CSRF token)",
    "POST /api/restart": "ask every worker process to restart (needs the CSRF token)",
    "GET /healthz": "200 or 503 with healthy and reasons; no authentication",
    "GET /metrics": "Prometheus text format, cluster-wide",
}


def limit_arg(request: Request, default: int = 20, most: int = 200) -> int:
    try:
        return max(1, min(most, int(request.args.get("limit", default))))
    except ValueError:
        return default


class Api:
    """Handlers of /api/* and /healthz; each returns a Response."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def index_of_api(self, request: Request) -> Response:
        return json_response({"endpoints": ENDPOINTS})

    def status(self, request: Request) -> Response:
        return json_response(self.sources.manager.get_status().model_dump(mode="json"))

    def queues(self, request: Request) -> Response:
        status = self.sources.manager.get_status().model_dump(mode="json")
        return json_response({"queues": view.queues(status), "paused": status["paused_queues"]})

    def throughput(self, request: Request, name: str) -> Response:
        check_queue_names([name])
        minutes = max(1, min(24 * 60, request.args.get("minutes", 60, type=int) or 60))
        points = view.throughput(self.sources, [name], minutes)[name]
        return json_response({"queue": name, "minutes": minutes,
                              "points": [{"minute": m, "completed": c, "failed": f}
                                         for m, c, f in points]})

    def workers(self, request: Request) -> Response:
        return json_response({"workers": view.plain(self.sources.registry.workers())})

    def jobs(self, request: Request) -> Response:
        records = self.sources.jobs.recent(limit=limit_arg(request))
        return json_response({"jobs": [view.job_summary(operator_record(view.plain(r)))
                                       for r in records]})

    def job(self, request: Request, job_id: str) -> Response:
        return json_response(operator_record(view.plain(self.sources.jobs.get(job_id))))

    def failures(self, request: Request) -> Response:
        failures = self.sources.stats.recent_failures(limit=limit_arg(request))
        return json_response({"failures": view.plain(failures)})

    def llm(self, request: Request) -> Response:
        return json_response({"usage": view.llm_usage(self.sources), "cache": view.llm_cache(self.sources),
                              "spend_today": view.llm_spend_today(self.sources)})

    def schedules(self, request: Request) -> Response:
        return json_response(self.sources.schedules.status())

    def exams(self, request: Request) -> Response:
        return json_response({"exams": self.sources.exams.exams()})

    def exam_analytics(self, request: Request, form_id: str) -> Response:
        stored = self.sources.exams.analytics(form_id)
        if stored is None:
            return json_error(404, f"no analytics for exam {form_id!r} (unknown exam, or not "
                                   "analysed yet)")
        return json_response(stored)

    def pause(self, request: Request, name: str | None = None) -> Response:
        queues = check_queue_names([name]) if name else None
        outcome = self.sources.manager.pause_queues(queues)
        return self._acted("paused", outcome, queues or list(ALL_QUEUES))

    def resume(self, request: Request, name: str | None = None) -> Response:
        queues = check_queue_names([name]) if name else None
        outcome = self.sources.manager.resume_queues(queues)
        return self._acted("resumed", outcome, queues or list(ALL_QUEUES))

    def restart(self, request: Request) -> Response:
        return self._acted("restart requested", self.sources.manager.restart(), [])

    def _acted(self, action: str, outcome: Any, queues: list[str]) -> Response:
        status = self.sources.manager.get_status()
        return json_response({"ok": True, "action": action, "queues": queues,
                              "outcome": view.plain(outcome), "paused": status.paused_queues})

    def healthz(self, request: Request) -> Response:
        """200 when healthy, else 503; only ``healthy`` and ``reasons``, never a secret."""
        try:
            status = self.sources.manager.get_status()
        except Exception as exc:  # a probe must answer, whatever broke
            return json_response({"healthy": False, "reasons": [f"status unavailable: "
                                                                f"{type(exc).__name__}"]}, 503)
        return json_response({"healthy": status.healthy, "reasons": status.reasons},
                             200 if status.healthy else 503)


def not_found(path: str) -> Response:
    return json_error(404, f"no such endpoint: {path}", endpoints=sorted(ENDPOINTS))
