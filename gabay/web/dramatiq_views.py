"""dramatiq-dashboard's pages with nothing personal on them: ids, state and reasons only.

dramatiq-dashboard prints each message as ``actor(args...)`` in its lists and every argument,
keyword and option (the whole traceback) on its message page. gabay's messages of submissions
carry only a claim check (gabay.cluster.claim_check), but a traceback can quote an exception's
text, and other actors' arguments are still not for an operator page. Its routes, counts, delete
and requeue are kept; its two templates that show messages are replaced by gabay's
(``dramatiq_queue.html``, ``dramatiq_job.html``): the actor, the message and Redis ids, times,
retries, the claim check's reference, and on the Failed tab the reason of the failure (the line
the worker recorded with the final failure, else the last line of the traceback).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import jinja2
from dramatiq_dashboard import DashboardApp

from gabay.cluster.stats import FAILURES_KEPT
from gabay.web.sources import Stats

#: The templates of dramatiq-dashboard that gabay replaces, and by which of its own.
REPLACED = {"queue.html": "dramatiq_queue.html", "job.html": "dramatiq_job.html"}
#: Options a message page shows (never the traceback: it can quote data).
SHOWN_OPTIONS = ("max_retries", "requeue_timestamp", "priority", "tenant")


def make_private(app: DashboardApp, stats: Stats) -> None:
    """Swap ``app``'s message templates for gabay's and give them the failure reasons."""
    folder = resources.files("gabay.web") / "templates"
    sources = {name: (folder / ours).read_text(encoding="utf-8") for name, ours in REPLACED.items()}
    env = app.templates
    env.loader = jinja2.ChoiceLoader([jinja2.DictLoader(sources), env.loader])
    env.filters["reason"] = traceback_reason
    env.globals["shown_options"] = SHOWN_OPTIONS
    env.globals["failure_reasons"] = lambda: {
        f.message_id: f.reason for f in reversed(stats.recent_failures(limit=FAILURES_KEPT))}


def traceback_reason(job: Any) -> str:
    """The exception line of the message's last traceback (``InvalidInput: ...``), or ''."""
    text = job.message.options.get("traceback") if hasattr(job, "message") else None
    if not isinstance(text, str):
        return ""
    lines = [line for line in text.splitlines() if line and not line[0].isspace()]
    last = lines[-1] if lines else ""
    name, colon, rest = last.partition(":")
    return f"{name.rsplit('.', 1)[-1]}{colon}{rest}"[:500]
