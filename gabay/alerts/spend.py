"""Rule ``llm_spend``: today's LLM cost (UTC day) is over ``ALERT_LLM_DAILY_BUDGET_USD``.

gabay records LLM cost as cluster-wide running totals (``llm:totals``, ``<provider>:<model>:cost_usd``,
written by :meth:`gabay.jobs.JobStore.add_call` for every call made). Today's spend is the total
now minus the total at the first evaluation of the day, which every evaluator offers with
``SET NX`` (``alerts:spend-baseline:<day>``, kept three days). Evaluators run every few seconds,
so the baseline is the total at midnight give or take an interval; on a day on which nothing
evaluated before some spend, that spend counts for no day. The incident resolves at midnight UTC.
"""

from __future__ import annotations

import datetime as dt

from gabay.alerts.notification import Finding, Severity
from gabay.alerts.rules import ClusterView

BASELINE_TTL = 3 * 24 * 3600
SUBJECT = "today"


def total_cost(view: ClusterView) -> float:
    """Cost of every LLM call ever recorded, USD."""
    raw = view.client.hgetall(view.keys.llm_totals)
    return sum(float(v) for k, v in raw.items() if k.decode().endswith(":cost_usd"))


class DailySpend:
    name = "llm_spend"
    severity: Severity = "warning"
    hold_s = 0.0

    def __init__(self, budget_usd: float | None) -> None:
        self.budget_usd = budget_usd

    def check(self, view: ClusterView) -> list[Finding]:
        if self.budget_usd is None:
            return []
        day = dt.datetime.fromtimestamp(view.now, dt.UTC).date().isoformat()
        total = total_cost(view)
        key = view.keys.llm_spend_baseline(day)
        view.client.set(key, repr(total), nx=True, ex=BASELINE_TTL)
        baseline = float(view.client.get(key) or total)
        spent = max(total - baseline, 0.0)
        if spent <= self.budget_usd:
            return []
        return [Finding(SUBJECT, f"LLM spend today is ${spent:.2f}, over the daily budget of "
                                 f"${self.budget_usd:.2f}",
                        {"day": day, "spent_usd": round(spent, 4), "budget_usd": self.budget_usd})]
