"""The rubric before sending: a model's feedback that fails it is regenerated once, then replaced.

:func:`through_rubric` checks a model's accepted feedback (:mod:`gabay.feedback.rubric`); when it
fails, the same provider is asked once more with the problems listed after the same prompt (the
prompt's prefix stays cacheable); a second failure (or a failed call) gives None, and the writer
uses the offline feedback. The verdict (passed, problems, regenerated) is reported for the job
record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gabay.errors import ProviderError
from gabay.feedback.model import Feedback, check_feedback
from gabay.feedback.rubric import RubricResult, check_rubric
from gabay.feedback.scoring import Score
from gabay.feedback.submission import Submission
from gabay.jobs import LLMCall
from gabay.llm.chat import ChatProvider
from gabay.llm.providers import complete_with_fallback

logger = logging.getLogger(__name__)

Report = Callable[[dict[str, object]], None]


def regeneration_prompt(user: str, verdict: RubricResult) -> str:
    return (user + "\nYour previous feedback did not meet the feedback rubric: " + verdict.summary()
            + ". Write the feedback JSON again, fixing these problems; keep every other rule.")


def through_rubric(feedback: Feedback, provider: ChatProvider, prompts: tuple[str, str],
                   submission: Submission, score: Score, record: Callable[[LLMCall], None],
                   report: Report | None, cache_key: str | None = None) -> Feedback | None:
    """``feedback`` if it meets the rubric, else one regeneration's if that does, else None."""
    verdict = check_rubric(feedback, submission, score)
    if verdict.passed:
        _report(report, verdict, regenerated=False)
        return feedback
    logger.info("Feedback from %s misses the rubric, regenerating once: %s", provider.name, verdict.summary())
    system, user = prompts
    try:
        completion = complete_with_fallback([provider], system, regeneration_prompt(user, verdict),
                                            stage="feedback", record=record, cache_key=cache_key,
                                            check=lambda data: check_feedback(data, score))
    except ProviderError as exc:
        _report(report, verdict, regenerated=True, error=str(exc))
        return None
    second = check_feedback(completion.data, score)
    again = check_rubric(second, submission, score)
    _report(report, again, regenerated=True, first=verdict)
    return second if again.passed else None


def _report(report: Report | None, verdict: RubricResult, *, regenerated: bool,
            first: RubricResult | None = None, error: str | None = None) -> None:
    if report is None:
        return
    entry: dict[str, object] = {**verdict.as_dict(), "regenerated": regenerated}
    if first is not None:
        entry["first_problems"] = first.problems
    if error is not None:
        entry["passed"] = False
        entry["error"] = error[:300]
    report(entry)


def offline_verdict(feedback: Feedback, submission: Submission, score: Score, report: Report | None) -> None:
    """Report the rubric's verdict on the offline feedback (it passes by construction: tested)."""
    verdict = check_rubric(feedback, submission, score)
    if not verdict.passed:
        logger.error("Offline feedback misses the rubric: %s", verdict.summary())
    if report is not None:
        report({**verdict.as_dict(), "regenerated": False, "by": "offline"})
