"""The dashboard's data as plain JSON-able values, read once per request from the sources."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from pydantic import BaseModel

from gabay.errors import GabayError
from gabay.llm.job_calls import spent_today
from gabay.queues import FORM_RESPONSE_QUEUES, QUESTION_QUEUES
from gabay.web.sources import Sources

WORKER_TYPES = {"question generation": QUESTION_QUEUES, "form response": FORM_RESPONSE_QUEUES}


def plain(value: Any) -> Any:
    """A pydantic model, dataclass, named tuple or mapping as JSON-able dicts and lists."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return plain(value._asdict())
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def worker_type(queue: str) -> str:
    for name, queues in WORKER_TYPES.items():
        if queue in queues:
            return name
    return "system"


def queues(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-queue breakdown of a status, each row with its worker type."""
    return [{**row, "worker_type": worker_type(name)}
            for name, row in status.get("per_queue", {}).items()]


def worker_types(status: dict[str, Any]) -> list[dict[str, Any]]:
    """Per worker type, its queues' counts summed and the live processes that consume them."""
    cards = []
    for title, names in WORKER_TYPES.items():
        rows = [status["per_queue"][name] for name in names if name in status.get("per_queue", {})]
        card: dict[str, Any] = {"title": title, "queues": list(names),
                                "workers": max((r["consumers"] for r in rows), default=0),
                                "paused": [r["name"] for r in rows if r["paused"]]}
        for key in ("running", "waiting", "delayed", "completed", "failed", "dead_lettered"):
            card[key] = sum(r[key] for r in rows)
        cards.append(card)
    # Question generation: completed and failed count documents (jobs), not stage messages.
    cards[0]["completed"] = status.get("queues", {}).get("completed", cards[0]["completed"])
    cards[0]["failed"] = status.get("queues", {}).get("failed", cards[0]["failed"])
    cards[0]["counts_jobs"] = True
    cards[-1]["enabled"] = status.get("form_response_worker", {}).get("enabled", True)
    return cards


def throughput(sources: Sources, names: list[str], minutes: int = 60) -> dict[str, list[list[int]]]:
    """Per queue, ``[minute_epoch, completed, failed]`` for each of the last ``minutes`` minutes."""
    return {name: [list(point) for point in sources.stats.throughput(name, minutes=minutes)]
            for name in names}


def llm_usage(sources: Sources) -> list[dict[str, Any]]:
    """Cluster-wide LLM calls, tokens and cost per provider and model."""
    rows = []
    for key, values in sorted(sources.jobs.totals().items()):
        provider, _, model = key.partition(":")
        rows.append({
            "provider": provider,
            "model": model,
            "calls": int(values.get("calls", 0)),
            "prompt_tokens": int(values.get("prompt_tokens", 0)),
            "completion_tokens": int(values.get("completion_tokens", 0)),
            "cost_usd": round(values.get("cost_usd", 0.0), 6),
        })
    return rows


def llm_spend_today(sources: Sources) -> dict[str, Any]:
    """Today's (UTC) LLM spend of the cluster against LLM_DAILY_BUDGET_USD and its policy."""
    settings = sources.settings
    spent = spent_today(sources.jobs.client, settings)
    budget = settings.llm_daily_budget_usd
    return {"usd": round(spent, 6), "budget_usd": budget, "policy": settings.llm_daily_budget_policy,
            "over_budget": budget is not None and spent >= budget}


def llm_cache(sources: Sources) -> list[dict[str, Any]]:
    """Cluster-wide prompt caching per stage and provider: prompt tokens, cached ones, share."""
    rows = []
    for stage, providers in sorted(sources.jobs.cache_totals().items()):
        for provider, counts in sorted(providers.items()):
            prompt, cached = counts.get("prompt_tokens", 0), counts.get("cached_tokens", 0)
            rows.append({"stage": stage, "provider": provider, "prompt_tokens": prompt,
                         "cached_tokens": cached,
                         "cached_share": round(cached / prompt, 4) if prompt else 0.0})
    return rows


def overview(sources: Sources, minutes: int = 60) -> dict[str, Any]:
    """Everything the health page shows."""
    status = plain(sources.manager.get_status())
    rows = queues(status)
    return {
        "status": status,
        "queues": rows,
        "worker_types": worker_types(status),
        "throughput": throughput(sources, [r["name"] for r in rows], minutes),
        "failures": plain(sources.stats.recent_failures(limit=20)),
        "llm": llm_usage(sources),
        "llm_cache": llm_cache(sources),
        "llm_spend_today": llm_spend_today(sources),
        "workers": plain(sources.registry.workers()),
        "jobs": [job_summary(plain(job)) for job in sources.jobs.recent(limit=10)],
        "schedules": schedules(sources),
        "scaling": sources.schedules.decisions(limit=10),
        "now": time.time(),
    }


def schedules(sources: Sources) -> dict[str, Any]:
    """The scheduled jobs; a schedules file that does not parse is shown, not a failed page."""
    try:
        return sources.schedules.status()
    except GabayError as exc:
        return {"schedules": [], "leader": None, "error": str(exc)}


def job_summary(job: dict[str, Any]) -> dict[str, Any]:
    calls = job.get("calls", [])
    return {
        "id": job["id"], "kind": job["kind"], "status": job["status"], "stage": job.get("stage"),
        "updated_at": job.get("updated_at"), "error": job.get("error"),
        "tokens": sum(c.get("prompt_tokens", 0) + c.get("completion_tokens", 0) for c in calls),
        "cost_usd": round(sum(c.get("cost_usd", 0.0) for c in calls), 6),
    }
