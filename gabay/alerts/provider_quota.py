"""Rule ``provider_quota``: an LLM provider's account ran out of quota or balance.

The LLM chain records every quota or billing exhaustion (OpenAI 429 ``insufficient_quota``,
DeepSeek 402) in ``llm:quota-exhausted`` (hash: provider -> JSON ``{"at", "reason"}``, written by
:func:`gabay.limits.provider_budget.note_quota_exhausted`) and moves on to the other provider.
Work goes on, dearer or offline, until someone pays: this rule tells. It fires for a provider whose
latest exhaustion is less than ``WINDOW_S`` old and resolves ``WINDOW_S`` after the last one.
"""

from __future__ import annotations

import json

from gabay.alerts.notification import Finding, Severity, scrub
from gabay.alerts.rules import ClusterView

#: How long after the latest exhaustion the incident stays open, seconds.
WINDOW_S = 900.0


class ProviderQuota:
    name = "provider_quota"
    severity: Severity = "critical"
    hold_s = 0.0

    def check(self, view: ClusterView) -> list[Finding]:
        findings = []
        for raw_name, raw in sorted(view.client.hgetall(view.keys.provider_quota_exhausted).items()):
            provider = scrub(raw_name.decode(), 40)
            try:
                record = json.loads(raw)
                at, reason = float(record.get("at", 0)), str(record.get("reason", ""))
            except (ValueError, TypeError, AttributeError):
                at, reason = 0.0, ""
            if view.now - at > WINDOW_S:
                continue
            findings.append(Finding(
                provider, f"LLM provider {provider} is out of quota or balance; its work goes to "
                          "the other provider (or the offline writer) until the account is topped up",
                {"provider": provider, "reason": scrub(reason, 300), "at": at}))
        return findings
