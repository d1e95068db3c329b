"""The paid calls of one job: kept on the job record as they complete, within the job's token budget.

Per-call checkpoints: every successful call's answer is written to the job record
(``details.llm_checkpoints[<stage>]``, with a digest of its prompt) as soon as it completes. A
stage that runs again (a retry, a message recovered from a killed worker) finds it and reuses it:
the provider is not called again, so the stage re-spends $0 for what already succeeded. The
call's record stays on the job (its cost was paid once).

Token budget: a job may spend at most ``LLM_JOB_TOKEN_BUDGET`` tokens (prompt + completion, all
of its calls, re-asks included); a call that could go over it is not made (BudgetExhausted).
The budget and the spend are on the job record (``details.token_budget``).

Daily spend (cluster-wide): every call's cost is added to ``llm:spend:<UTC day>``. Once it reaches
``LLM_DAILY_BUDGET_USD``, the policy ``LLM_DAILY_BUDGET_POLICY`` applies: ``defer`` (no paid call
until the next UTC day: ProviderHeld, so the job waits without spending a retry) or ``cheaper``
(DeepSeek first for every purpose; calls go on).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from typing import Any

import redis

from gabay.errors import BudgetExhausted, ProviderHeld
from gabay.jobs import JobRecord, JobStore, LLMCall
from gabay.limits.provider_budget import ProviderBudget
from gabay.llm.chat import DEEPSEEK, ChatProvider, Completion
from gabay.llm.providers import Check, complete_with_fallback, provider_chain
from gabay.settings import Settings

#: The job record's details entry holding the checkpoints, by stage.
CHECKPOINTS = "llm_checkpoints"
#: The job record's details entry holding ``{"limit": tokens, "spent": tokens}``.
TOKEN_BUDGET = "token_budget"
#: Longest deferral while the daily budget is spent (the job then checks again), ms.
DAILY_RECHECK_MS = 3_600_000
SPEND_TTL_S = 3 * 24 * 3600


def utc_day(now: float | None = None) -> str:
    return dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC).date().isoformat()


def spent_today(client: redis.Redis, settings: Settings) -> float:
    """The cluster's LLM spend today (UTC), USD."""
    return float(client.hget(settings.keys.llm_spend_day(utc_day()), "cluster") or 0.0)


def over_daily_budget(client: redis.Redis, settings: Settings) -> bool:
    budget = settings.llm_daily_budget_usd
    return budget is not None and spent_today(client, settings) >= budget


def prompt_digest(system: str, user: str) -> str:
    return hashlib.sha256(f"{system}\x00{user}".encode()).hexdigest()[:32]


def has_checkpoint(record: JobRecord, stage: str) -> bool:
    """True when ``stage`` kept a paid answer (its calls must stay on the record)."""
    return stage in record.details.get(CHECKPOINTS, {})


class JobCalls:
    """The LLM calls of job ``job_id``: checkpointed, budgeted, recorded on the job."""

    def __init__(self, store: JobStore, job_id: str, settings: Settings,
                 budget: ProviderBudget | None = None) -> None:
        self.store = store
        self.job_id = job_id
        self.settings = settings
        self.budget = budget

    @classmethod
    def shared(cls, store: JobStore, job_id: str, settings: Settings) -> JobCalls:
        """With the cluster's shared provider budget (in the job store's Redis)."""
        budget = ProviderBudget(store.client, settings.keys, headroom=settings.llm_budget_headroom,
                                wait_ms=settings.llm_budget_wait_ms)
        return cls(store, job_id, settings, budget)

    def chain(self, purpose: str) -> list[ChatProvider]:
        """The providers for ``purpose``; over the daily budget with policy ``cheaper``, DeepSeek
        (the cheaper provider) first."""
        chain = provider_chain(self.settings, purpose, self.budget)
        if self.settings.llm_daily_budget_policy == "cheaper" and over_daily_budget(self.store.client,
                                                                                   self.settings):
            chain.sort(key=lambda provider: provider.name != DEEPSEEK)
        return chain

    def complete(self, chain: list[ChatProvider], system: str, user: str, *, stage: str,
                 cache_key: str | None = None, check: Check | None = None) -> Completion:
        """The stage's answer: its checkpoint when an earlier run got one, else a new call."""
        digest = prompt_digest(system, user)
        kept = self.store.get(self.job_id).details.get(CHECKPOINTS, {}).get(stage)
        if isinstance(kept, dict) and kept.get("prompt") == digest:
            return Completion(data=kept["data"], call=LLMCall.model_validate(kept["call"]),
                              text=str(kept.get("text", "")))
        completion = complete_with_fallback(chain, system, user, stage=stage, record=self.record,
                                            cache_key=cache_key, check=check, allowance=self.allow)
        entry: dict[str, Any] = {"prompt": digest, "data": completion.data,
                                 "call": completion.call.model_dump(mode="json")}
        self.store.update(self.job_id,
                          lambda record: record.details.setdefault(CHECKPOINTS, {}).__setitem__(stage, entry))
        return completion

    def record(self, call: LLMCall) -> None:
        """Add a call to the job record and update the budget's spend there."""
        self.store.add_call(self.job_id, call)
        if call.cost_usd:
            day = self.settings.keys.llm_spend_day(utc_day())
            pipe = self.store.client.pipeline()
            pipe.hincrbyfloat(day, "cluster", call.cost_usd)
            pipe.expire(day, SPEND_TTL_S)
            pipe.execute()
        limit = self.settings.llm_job_token_budget

        def spend(record: JobRecord) -> None:
            record.details[TOKEN_BUDGET] = {"limit": limit or None, "spent": record.total_tokens}

        self.store.update(self.job_id, spend)

    def allow(self, estimate: int) -> None:
        """Raise BudgetExhausted when a call of about ``estimate`` tokens would exceed the budget;
        ProviderHeld when the cluster's daily budget is spent under policy ``defer``."""
        if self.settings.llm_daily_budget_policy == "defer" and over_daily_budget(self.store.client,
                                                                                 self.settings):
            tomorrow = (int(time.time()) // 86_400 + 1) * 86_400
            wait = min(int((tomorrow - time.time()) * 1000) + 1000, DAILY_RECHECK_MS)
            raise ProviderHeld(f"the daily LLM budget (LLM_DAILY_BUDGET_USD="
                               f"{self.settings.llm_daily_budget_usd:g}) is spent", retry_in_ms=wait)
        limit = self.settings.llm_job_token_budget
        if not limit:
            return
        spent = self.store.get(self.job_id).total_tokens
        if spent + estimate > limit:
            raise BudgetExhausted(f"job {self.job_id}: a call of about {estimate} tokens would go over "
                                  f"its token budget ({spent} of LLM_JOB_TOKEN_BUDGET={limit} spent)")
