"""The operator console's pages: the jobs list, one job, and the confirmed retry and cancel.

Every action is a POST (the app checks its CSRF token and origin first) that answers a
confirmation page; only the confirmation's own POST (``confirm=yes``) acts. The pages show ids
only (see :mod:`gabay.console.jobs`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from gabay.cluster.job_index import SCAN_LIMIT, Cursor, JobQuery
from gabay.console.jobs import ACTIONS, BULK_LIMIT, JOB_QUEUES, KINDS, JobConsole, Outcome
from gabay.errors import JobNotFound
from gabay.jobs import JobStatus
from gabay.web.pages import build_environment
from gabay.web.responses import secure

PAGE_SIZE = 50
FILTERS = ("kind", "status", "queue", "tenant")


def utc(value: Any) -> str:
    """An epoch time as ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    if not isinstance(value, int | float):
        return "-"
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_time(text: str) -> float | None:
    """``YYYY-MM-DDTHH:MM`` (a datetime-local field, read as UTC) as epoch seconds."""
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() if text else None
    except ValueError:
        return None


class ConsolePages:
    """Handlers of /jobs, /jobs/<id>, /jobs/<id>/<action> and /jobs/bulk."""

    def __init__(self, console: JobConsole) -> None:
        self.console = console
        self.env = build_environment()
        self.env.filters["utc"] = utc

    def _render(self, template: str, status: int = 200, **context: Any) -> Response:
        html = self.env.get_template(template).render(**context)
        return secure(Response(html, status=status, mimetype="text/html"), page=True)

    def jobs(self, request: Request, context: dict[str, Any]) -> Response:
        args = request.args
        wanted = args.get("q", "").strip()
        if wanted:
            try:
                self.console.store.get(wanted)
                return redirect(f"{request.script_root}/jobs/{wanted}")
            except JobNotFound:
                pass
        filters = {name: args.get(name, "").strip() for name in FILTERS}
        query = JobQuery({k: v for k, v in filters.items() if v},
                         since=parse_time(args.get("since", "")), until=parse_time(args.get("until", "")))
        size = max(1, min(200, args.get("size", PAGE_SIZE, type=int) or PAGE_SIZE))
        after = Cursor.decode(args.get("after"))
        rows, page = self.console.page(query, size, after)
        kept = {k: v for k, v in args.items() if k not in ("after", "q") and v}
        base = f"{request.script_root}/jobs"
        next_url = f"{base}?{urlencode({**kept, 'after': page.next.encode()})}" if page.next else None
        first_url = f"{base}?{urlencode(kept)}" if after is not None else None
        shown = {**filters, "q": wanted, "since": args.get("since", ""), "until": args.get("until", "")}
        return self._render("jobs.html", rows=rows, total=page.total, truncated=page.truncated,
                            scan_limit=SCAN_LIMIT, next_url=next_url, first_url=first_url,
                            query=shown, kinds=KINDS, statuses=[s.value for s in JobStatus],
                            queues=JOB_QUEUES, counts=self.console.status_counts(),
                            not_found=wanted or None, **context)

    def job(self, request: Request, context: dict[str, Any], job_id: str) -> Response:
        try:
            view = self.console.view(job_id)
        except JobNotFound:
            return self._render("job_confirm.html", status=404, action="find", ids=[],
                                outcomes=[_missing(job_id)], back_url=f"{request.script_root}/jobs",
                                action_url="", **context)
        return self._render("job.html", job=view, **context)

    def act(self, request: Request, context: dict[str, Any], job_id: str | None = None,
            action: str | None = None) -> Response:
        """The confirmation page, or (with ``confirm=yes``) the action and its outcomes."""
        action = action or request.form.get("action", "")
        if action not in ACTIONS:
            return self._render("job_confirm.html", status=400, action="unknown action", ids=[],
                                outcomes=[], back_url=f"{request.script_root}/jobs", action_url="",
                                **context)
        ids = [job_id] if job_id else [i for i in request.form.getlist("ids") if i][:BULK_LIMIT]
        root = request.script_root
        back = f"{root}/jobs/{job_id}" if job_id else f"{root}/jobs"
        url = f"{root}/jobs/{job_id}/{action}" if job_id else f"{root}/jobs/bulk"
        if request.form.get("confirm") != "yes":
            return self._render("job_confirm.html", action=action, ids=ids, outcomes=None,
                                back_url=back, action_url=url, **context)
        outcomes = self.console.bulk(action, ids)
        return self._render("job_confirm.html", action=action, ids=ids, outcomes=outcomes,
                            back_url=back, action_url=url, **context)


def _missing(job_id: str) -> Outcome:
    return Outcome(job_id, False, f"no job {job_id!r} (unknown or expired)")
