"""Benchmark: USD per accepted question and per feedback email, before and after cache-friendly prompts.

Against fake OpenAI and DeepSeek servers (tests/fakes/llm_server.py) that model both prompt
caches (DeepSeek: any earlier prompt's prefix, in 64-token units; OpenAI: from 1024 tokens, in
128-token steps, routed by ``prompt_cache_key``) and count tokens as 4 characters each. Prices
are the table's (gabay/llm/pricing.py) at DeepSeek's off-peak price, fixed so the figures do not
depend on the hour.

Questions: for each sample document (examples/documents, 5 questions asked), the two-round flow
of the pipeline: drafting on DeepSeek, the structural and duplicate checks, validation on OpenAI
by a validator that rejects two drafts of three (so that a second round runs), a second round for
the missing questions, its validation. Feedback: the five sample submissions
(examples/submissions, one form), one email each, on OpenAI (the default) and on DeepSeek.

"Before" is the prompt order of the last commit: its ``gabay/questions/prompts.py`` and
``gabay/feedback/prompts.py`` are read with ``git show <BEFORE>:<path>`` (``BEFORE``: the last
commit with the old prompt order) and loaded as modules, and
no ``prompt_cache_key`` is sent; "after" is the working tree's prompts and cache keys. Both run
the same flow, chain and fake servers. The token counts, caches and prices are models: the
figures compare the two orders, they are not a bill.

Run: ``.venv/bin/python bench/bench_llm_cost.py`` (no Redis needed).
"""

from __future__ import annotations

import subprocess
import sys
import types
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as ``python bench/<file>``

from gabay.feedback import prompts as feedback_prompts
from gabay.feedback.model import check_feedback
from gabay.feedback.scoring import score
from gabay.feedback.submission import parse_submission
from gabay.jobs import LLMCall
from gabay.llm.pricing import DEEPSEEK_FLASH_OFF_PEAK
from gabay.llm.providers import complete_with_fallback, provider_chain
from gabay.questions import prompts as question_prompts
from gabay.questions.checks import is_duplicate, structural_problem, tidy, to_question
from gabay.questions.models import QuestionRequest, QuestionTask
from gabay.questions.retrieval import select_passages, split_passages
from gabay.settings import Settings, load_settings
from tests.fakes import llm_server as fake
from tests.support.feedback_llm import feedback_responder
from tests.support.feedback_samples import sample

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-bench-key"
#: The last commit whose prompts had the old order (language, topic and counts before the passages).
BEFORE = "a749ee46ff39a2d00ee875c644755d33dc100a14"
DOCUMENTS = sorted((ROOT / "examples" / "documents").glob("*.md"))
SUBMISSIONS = ("all-wrong", "mixed-score", "perfect-score", "tagalog", "with-open-question")
COUNT = 5


def head_module(path: str, name: str) -> types.ModuleType:
    """``path`` as it is in the last commit, loaded as a module (its imports resolve as today)."""
    source = subprocess.run(["git", "show", f"{BEFORE}:{path}"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    module = types.ModuleType(name)
    exec(compile(source, f"{BEFORE}:{path}", "exec"), module.__dict__)  # our own file, from git
    return module


def half_validator(body: dict[str, Any]) -> dict[str, Any]:
    """The fake examiner, except that validation rejects two drafts of three."""
    answer = fake.exam_responder(body)
    for i, verdict in enumerate(answer.get("verdicts", [])):
        if i % 3:
            verdict.update(ok=False, reason="not supported by the passage")
    return answer


def questions_run(settings: Settings, prompts: Any, keyed: bool) -> tuple[list[LLMCall], int]:
    """Both rounds for every document; the calls and the number of accepted questions."""
    calls: list[LLMCall] = []
    accepted_total = 0
    for path in DOCUMENTS:
        request = QuestionRequest.model_validate(
            {"document": {"id": path.stem, "title": path.stem, "text": path.read_text()}, "count": COUNT})
        passages = select_passages(split_passages(request.document.text), None, COUNT)
        task = QuestionTask.from_request(f"bench-{path.stem}", request, passages)
        key = question_prompts.cache_key(task) if keyed else None
        for round_ in (1, 2):
            task = task.model_copy(update={"round": round_})
            suffix = "" if round_ == 1 else f"-{round_}"
            wanted = task.drafts_wanted
            drafted = complete_with_fallback(provider_chain(settings, "draft"), prompts.DRAFT_SYSTEM,
                                             prompts.draft_prompt(task, wanted), stage="generation" + suffix,
                                             record=calls.append, cache_key=key)
            drafts, _ = question_prompts.parse_drafts(drafted.data, task)
            candidates = []
            for draft in (tidy(d) for d in drafts):
                kept = list(task.accepted) + [to_question(c, task, 0) for c in candidates]
                if structural_problem(draft, task) is None and not is_duplicate(draft, kept):
                    candidates.append(draft)
            if not candidates:
                break
            checked = complete_with_fallback(provider_chain(settings, "validate"), prompts.VALIDATE_SYSTEM,
                                             prompts.validate_prompt(task, candidates),
                                             stage="validation" + suffix, record=calls.append, cache_key=key)
            verdicts = question_prompts.parse_verdicts(checked.data)
            accepted = list(task.accepted)
            for draft in candidates:
                if verdicts.get(draft.id, (False, ""))[0] and len(accepted) < COUNT:
                    accepted.append(to_question(draft, task, len(accepted) + 1))
            task = task.model_copy(update={"accepted": accepted})
            if len(accepted) >= COUNT:
                break
        accepted_total += len(task.accepted)
    return calls, accepted_total


def feedback_run(settings: Settings, build: Callable[..., tuple[str, str]], keyed: bool,
                 purpose_first: str) -> list[LLMCall]:
    calls: list[LLMCall] = []
    chain = [p for p in provider_chain(settings, "feedback") if p.name == purpose_first]
    for name in SUBMISSIONS:
        submission = parse_submission(sample(name))
        facts = score(submission)
        system, user = build(submission, facts)
        key = feedback_prompts.cache_key(submission) if keyed else None
        complete_with_fallback(chain, system, user, stage="feedback", record=calls.append, cache_key=key,
                               check=lambda data, f=facts: check_feedback(data, f))
    return calls


def cost(calls: list[LLMCall]) -> float:
    return sum(c.cost_usd for c in calls)


def tokens(calls: list[LLMCall]) -> str:
    prompt = sum(c.prompt_tokens for c in calls)
    cached = sum(c.cached_tokens for c in calls)
    completion = sum(c.completion_tokens for c in calls)
    return f"{prompt} prompt ({cached} cached) + {completion} completion tokens"


def shares(calls: list[LLMCall]) -> dict[str, float]:
    prompt: dict[str, int] = defaultdict(int)
    cached: dict[str, int] = defaultdict(int)
    for call in calls:
        prompt[f"{call.stage} ({call.provider})"] += call.prompt_tokens
        cached[f"{call.stage} ({call.provider})"] += call.cached_tokens
    return {stage: cached[stage] / prompt[stage] for stage in sorted(prompt) if prompt[stage]}


def main() -> None:
    old_questions = head_module("gabay/questions/prompts.py", "head_question_prompts")
    old_feedback = head_module("gabay/feedback/prompts.py", "head_feedback_prompts")
    results: dict[str, dict[str, Any]] = {}
    for label, prompts, build, keyed in (("before (old)", old_questions, old_feedback.build_prompt, False),
                                         ("after", question_prompts, feedback_prompts.build_prompt, True)):
        with fake.running("deepseek", api_key=KEY, responder=half_validator) as deepseek, \
                fake.running("openai", api_key=KEY, responder=half_validator) as openai_server:
            deepseek.model_caching()
            openai_server.model_caching()
            settings = load_settings(deepseek_api_key=KEY, deepseek_base_url=deepseek.base_url,
                                     openai_api_key=KEY, openai_base_url=openai_server.base_url,
                                     llm_timeout=30, llm_prices={"deepseek-flash": DEEPSEEK_FLASH_OFF_PEAK})
            question_calls, accepted = questions_run(settings, prompts, keyed)
            deepseek.responder = openai_server.responder = feedback_responder
            by_openai = feedback_run(settings, build, keyed, "openai")
            by_deepseek = feedback_run(settings, build, keyed, "deepseek")
        results[label] = {"question_calls": question_calls, "accepted": accepted,
                          "openai": by_openai, "deepseek": by_deepseek}

    print(f"{'':16}{'USD/accepted question':>24}{'USD/email (OpenAI)':>20}{'USD/email (DeepSeek)':>22}")
    for label, r in results.items():
        print(f"{label:16}{cost(r['question_calls']) / max(r['accepted'], 1):>24.7f}"
              f"{cost(r['openai']) / len(SUBMISSIONS):>20.7f}{cost(r['deepseek']) / len(SUBMISSIONS):>22.7f}"
              f"   ({r['accepted']} questions accepted, {len(r['question_calls'])} calls)")
    for label, r in results.items():
        print(f"questions, {label}: {tokens(r['question_calls'])}; "
              f"feedback on OpenAI: {tokens(r['openai'])}")
    before, after = (cost(results[k]["question_calls"]) / max(results[k]["accepted"], 1) for k in results)
    print(f"change per accepted question: {100 * (after - before) / before:+.1f}%")
    for label, r in results.items():
        print(f"cached-token share, {label}:")
        for stage, share in {**shares(r["question_calls"]), **shares(r["openai"]),
                             **{f"{k} ": v for k, v in shares(r["deepseek"]).items()}}.items():
            print(f"  {stage:32}{100 * share:6.1f}%")


if __name__ == "__main__":
    main()
