"""Personal feedback on a submission: the feedback chain of language models, then the offline writer.

The score and the facts come from :mod:`gabay.feedback.scoring`; a model only writes words, from
the prompt of :mod:`gabay.feedback.prompts`, and its answer is used only once
:func:`gabay.feedback.model.check_feedback` accepted it. A provider whose answer fails the checks
is treated as unavailable and the next one is asked; with no provider left (or one that rejects
the request, or none configured) the offline feedback of :mod:`gabay.feedback.offline.writer` is
used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gabay.errors import ProviderRejected, ProviderUnavailable
from gabay.feedback.model import Feedback, check_feedback
from gabay.feedback.offline.writer import offline_feedback
from gabay.feedback.prompts import build_prompt
from gabay.feedback.scoring import Score
from gabay.feedback.submission import Submission
from gabay.jobs import LLMCall
from gabay.llm.providers import complete_with_fallback, offline_call, provider_chain
from gabay.settings import Settings

logger = logging.getLogger(__name__)


def write_feedback(settings: Settings, submission: Submission, score: Score,
                   record: Callable[[LLMCall], None]) -> tuple[Feedback, str]:
    """The feedback and where it came from (``openai:gpt-4o-mini``, ``offline``, ...)."""
    chain = provider_chain(settings, "feedback")
    reasons: list[str] = []
    if chain:
        system, user = build_prompt(submission, score)
        for provider in chain:
            try:
                completion = complete_with_fallback([provider], system, user, stage="feedback", record=record)
                return check_feedback(completion.data, score), f"{provider.name}:{provider.model}"
            except ProviderUnavailable as exc:
                logger.warning("Feedback from %s not usable: %s", provider.name, exc)
                reasons.append(str(exc))
            except ProviderRejected as exc:
                logger.error("Feedback request rejected by %s: %s", provider.name, exc)
                reasons.append(str(exc))
                break
    record(offline_call("feedback"))
    source = "offline" + (f" (after: {'; '.join(reasons)})" if reasons else "")
    return offline_feedback(submission, score), source[:1000]
