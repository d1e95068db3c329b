"""Personal feedback on a submission: the feedback chain of language models, then the offline writer.

The score and the facts come from :mod:`gabay.feedback.scoring`; a model only writes words, from
the prompt of :mod:`gabay.feedback.prompts`, and its answer is used only once
:func:`gabay.feedback.model.check_feedback` accepted it. An answer that fails the checks is asked
again once with the reason (``LLM_REASKS``), then the provider is treated as unavailable and the
next one is asked (so is one out of quota); with no provider left (or one that rejects the
request, or none configured) the offline feedback of :mod:`gabay.feedback.offline.writer` is
used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gabay.errors import ProviderHeld, ProviderRejected, ProviderUnavailable
from gabay.feedback.model import Feedback, check_feedback
from gabay.feedback.offline.writer import offline_feedback
from gabay.feedback.prompts import build_prompt, cache_key
from gabay.feedback.rubric_gate import Report, offline_verdict, through_rubric
from gabay.feedback.scoring import Score
from gabay.feedback.submission import Submission
from gabay.jobs import LLMCall
from gabay.limits.provider_budget import ProviderBudget
from gabay.llm.providers import Allowance, complete_with_fallback, offline_call, provider_chain
from gabay.settings import Settings

logger = logging.getLogger(__name__)


def write_feedback(settings: Settings, submission: Submission, score: Score,
                   record: Callable[[LLMCall], None],
                   budget: ProviderBudget | None = None,
                   report: Report | None = None,
                   allowance: Allowance | None = None) -> tuple[Feedback, str]:
    """The feedback and where it came from (``openai:gpt-4o-mini``, ``offline``, ...).

    ``budget``: the shared provider budget (None: none); ``allowance``: the job's token budget.
    A model's feedback must also meet the rubric (:mod:`gabay.feedback.rubric_gate`: one
    regeneration, then the offline writer); ``report`` receives the rubric's verdict."""
    chain = provider_chain(settings, "feedback", budget)
    reasons: list[str] = []
    held: list[ProviderHeld] = []
    if chain:
        system, user = build_prompt(submission, score)
        for provider in chain:
            try:
                completion = complete_with_fallback([provider], system, user, stage="feedback",
                                                    record=record, cache_key=cache_key(submission),
                                                    check=lambda data: check_feedback(data, score),
                                                    allowance=allowance)
                feedback = through_rubric(check_feedback(completion.data, score), provider, (system, user),
                                          submission, score, record, report, cache_key(submission))
                if feedback is not None:
                    return feedback, f"{provider.name}:{provider.model}"
                reasons.append(f"{provider.name} feedback missed the rubric after one regeneration")
                break
            except ProviderHeld as exc:  # only busy: worth waiting for rather than offline text
                logger.warning("Feedback from %s held by its budget: %s", provider.name, exc)
                held.append(exc)
                reasons.append(str(exc))
            except ProviderUnavailable as exc:
                logger.warning("Feedback from %s not usable: %s", provider.name, exc)
                reasons.append(str(exc))
            except ProviderRejected as exc:
                logger.error("Feedback request rejected by %s: %s", provider.name, exc)
                reasons.append(str(exc))
                break
    if chain and len(held) == len(chain):
        raise ProviderHeld("every feedback provider is held by its budget",
                           retry_in_ms=min(h.retry_in_ms for h in held))
    record(offline_call("feedback"))
    source = "offline" + (f" (after: {'; '.join(reasons)})" if reasons else "")
    feedback = offline_feedback(submission, score)
    offline_verdict(feedback, submission, score, report)
    return feedback, source[:1000]
