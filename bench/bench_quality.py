"""Benchmark: the quality gate's numbers over every sample document and submission.

For each provider mode (``offline``: no keys; ``fake``: the local fake DeepSeek and OpenAI of
tests/fakes speaking the real wire format, whose examiner drafts with the extractive writer and
whose blind answerer answers from the passages; ``fake-sloppy``: the same providers writing some
flawed or wrongly keyed drafts and generic feedback, which the gate must stop), every sample
document is asked for 10
questions at each difficulty, and once with a Bloom mix; the stages run in this process on a
real Redis (``--redis-url``, keys under their own prefix, deleted at the end). Every sample
submission gets its feedback written. The table shows:

- IWF flags per 100 drafts (what the rules caught) and per 100 accepted questions (goal 0),
  re-checked on the final questions;
- round-trip agreement of the accepted questions, re-answered blind by the offline answerer
  (goal >= 95 %);
- the Bloom mix of the mix requests: requests whose every level is within one question of the
  request;
- difficulty: mean distractor closeness of the accepted fill-in multiple choice, and the share of
  the final questions above recall, at easy / medium / hard;
- the feedback rubric's pass rate: of the words sent (after at most one regeneration) and of the
  first answers.

    .venv/bin/python bench/bench_quality.py [--modes offline,fake,fake-sloppy] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as ``python bench/<file>``

import redis

from gabay.feedback.scoring import score
from gabay.feedback.submission import parse_submission
from gabay.feedback.writer import write_feedback
from gabay.jobs import JobStore, LLMCall
from gabay.questions.bloom import within_one
from gabay.questions.checks import flaws_of
from gabay.questions.gate import ROUND_TRIP_REJECTED, offline_answers
from gabay.questions.models import Draft, Question, QuestionResult, QuestionTask, parse_request
from gabay.questions.offline.closeness import distractor_closeness
from gabay.questions.offline.terms import key_terms
from gabay.questions.round_trip import agrees
from gabay.questions.stages import QuestionStages
from gabay.settings import Settings, load_settings
from tests.fakes import llm_server as fake
from tests.support.feedback_llm import feedback_responder

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted((ROOT / "examples" / "documents").glob("*.md"))
SUBMISSIONS = sorted((ROOT / "examples" / "submissions").glob("*.json"))
DIFFICULTIES = ("easy", "medium", "hard")
MIX = {"remember": 0.5, "understand": 0.3, "analyse": 0.2}


@dataclass
class Tally:
    drafts: int = 0
    draft_flags: int = 0
    round_trip_rejected: int = 0
    accepted: int = 0
    accepted_flags: int = 0
    agreed: int = 0
    mixes: int = 0
    mixes_met: int = 0
    shortfalls: int = 0
    closeness: dict[str, list[float]] = field(default_factory=lambda: {d: [] for d in DIFFICULTIES})
    above_recall: dict[str, list[int]] = field(default_factory=lambda: {d: [] for d in DIFFICULTIES})
    feedback: int = 0
    rubric_sent: int = 0
    rubric_first: int = 0


def title_of(path: Path) -> str:
    return path.read_text().splitlines()[0].lstrip("# ").strip()


def run_request(stages: QuestionStages, store: JobStore, request: dict[str, Any],
                tally: Tally) -> tuple[QuestionTask, QuestionResult]:
    job_id = f"bench-{uuid.uuid4().hex[:12]}"
    store.create("questions", job_id)
    task = stages.draft(stages.retrieve(job_id, parse_request(request)))
    seen: list[Draft] = list(task.drafts)
    task = stages.validate(task)
    if stages.needs_another_round(task):
        task = stages.draft(task.model_copy(update={"round": task.round + 1}))
        seen += task.drafts
        task = stages.validate(task)
    result = stages.result(task)
    tally.drafts += len(seen)
    tally.draft_flags += sum(1 for d in seen if flaws_of(d, task))
    tally.shortfalls += result.shortfall is not None
    tally.round_trip_rejected += sum(1 for r in task.rejected if r.reason == ROUND_TRIP_REJECTED)
    return task, result


def check_accepted(task: QuestionTask, questions: list[Question], tally: Tally) -> None:
    drafts = [Draft(id=q.id, type=q.type, question=q.question, options=q.options, answer=q.answer,
                    passage_id=q.passage_id, evidence=q.evidence) for q in questions]
    answers = offline_answers(task, drafts)
    tally.accepted += len(drafts)
    tally.accepted_flags += sum(1 for d in drafts if flaws_of(d, task))
    tally.agreed += sum(1 for d in drafts if agrees(d, answers[d.id]))


def questions_quality(stages: QuestionStages, store: JobStore, tally: Tally) -> None:
    for path in DOCUMENTS:
        document = {"id": path.stem, "title": title_of(path), "text": path.read_text()}
        for difficulty in DIFFICULTIES:
            task, result = run_request(stages, store, {"document": document, "count": 10,
                                                       "difficulty": difficulty}, tally)
            check_accepted(task, result.questions, tally)
            texts = [p.text for p in task.passages]
            terms = key_terms(texts)
            tally.closeness[difficulty] += [distractor_closeness(texts, terms, q.answer, q.options)
                                            for q in task.accepted  # every accepted recall item
                                            if q.type == "multiple_choice" and "_____" in q.question]
            tally.above_recall[difficulty] += [q.bloom_level != "remember" for q in result.questions]
        task, result = run_request(stages, store, {"document": document, "count": 10, "bloom_mix": MIX,
                                                   "question_types": ["multiple_choice", "short_answer"]},
                                   tally)
        check_accepted(task, result.questions, tally)
        tally.mixes += 1
        assert result.bloom is not None and result.bloom.requested is not None
        tally.mixes_met += within_one(result.bloom.requested, result.bloom.achieved)


def feedback_quality(settings: Settings, tally: Tally) -> None:
    for path in SUBMISSIONS:
        submission = parse_submission(json.loads(path.read_text()))
        verdicts: list[dict[str, object]] = []
        calls: list[LLMCall] = []
        write_feedback(settings, submission, score(submission), record=calls.append, report=verdicts.append)
        tally.feedback += 1
        tally.rubric_sent += bool(verdicts and verdicts[-1]["passed"])
        tally.rubric_first += bool(verdicts and verdicts[0]["passed"] and not verdicts[0]["regenerated"])


def examiner(body: dict[str, Any]) -> dict[str, Any]:
    """The fake providers' answer: an examiner for question prompts, a teacher for feedback."""
    system = str(body["messages"][0]["content"])
    if "feedback" in system.lower() and "quiz" in system.lower():
        return feedback_responder(body)
    return fake.exam_responder(body)


def sloppy(body: dict[str, Any]) -> dict[str, Any]:
    """A careless examiner and teacher: flaws and wrong keys in some drafts, feedback that names nothing.

    Every third multiple choice gets "All of the above", every fourth its key moved to a
    distractor, every third true/false its key flipped, every third short answer a wrong key;
    the feedback's strengths and notes are generic. The gate must catch them all.
    """
    answer = examiner(body)
    if "notes" in answer:
        answer["strengths"] = ["Nice work."]
        answer["notes"] = [{"question_id": n["question_id"], "note": "Look at this again."}
                           for n in answer["notes"]]
        return answer
    seen: dict[str, int] = {}
    for draft in answer.get("questions", []):
        number = seen[draft["type"]] = seen.get(draft["type"], -1) + 1  # the n-th of its type
        wrong = [o for o in draft["options"] if o != draft["answer"]]
        if draft["type"] == "multiple_choice" and number % 3 == 0 and wrong:
            draft["options"] = [o if o != wrong[-1] else "All of the above" for o in draft["options"]]
        elif draft["type"] == "multiple_choice" and number % 4 == 1 and wrong:
            draft["answer"] = wrong[0]
        elif draft["type"] == "true_false" and number % 3 == 0:
            draft["answer"] = "False" if draft["answer"] == "True" else "True"
        elif draft["type"] == "short_answer" and number % 3 == 0:
            draft["answer"] = "a volcano"
    return answer


@contextmanager
def providers(mode: str, base: Settings) -> Iterator[Settings]:
    if mode == "offline":
        yield base
        return
    responder = sloppy if mode == "fake-sloppy" else examiner
    with ExitStack() as stack:
        deepseek = stack.enter_context(fake.running("deepseek", responder=responder))
        openai = stack.enter_context(fake.running("openai", responder=responder))
        yield base.model_copy(update={
            "deepseek_api_key": load_settings(deepseek_api_key=deepseek.api_key).deepseek_api_key,
            "deepseek_base_url": deepseek.base_url, "openai_base_url": openai.base_url,
            "openai_api_key": load_settings(openai_api_key=openai.api_key).openai_api_key,
            "llm_timeout": 20.0})


def measure(mode: str, client: redis.Redis, base: Settings) -> Tally:
    tally = Tally()
    with providers(mode, base) as settings:
        store = JobStore(client, settings)
        questions_quality(QuestionStages(store, settings), store, tally)
        feedback_quality(settings, tally)
    return tally


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def per100(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}" if whole else "-"


def by_difficulty(values: dict[str, list[Any]], fmt: str) -> str:
    return " / ".join(format(statistics.mean(values[d]), fmt) if values[d] else "-" for d in DIFFICULTIES)


def table(results: dict[str, Tally]) -> str:
    rows = [
        ("questions accepted (drafts)", lambda t: f"{t.accepted} ({t.drafts})"),
        ("IWF flags per 100 drafts", lambda t: per100(t.draft_flags, t.drafts)),
        ("IWF flags per 100 accepted (goal 0)", lambda t: per100(t.accepted_flags, t.accepted)),
        ("drafts rejected by the round trip per 100", lambda t: per100(t.round_trip_rejected, t.drafts)),
        ("round-trip agreement, accepted (goal >= 95 %)", lambda t: pct(t.agreed, t.accepted)),
        ("Bloom mix within +-1 of the request", lambda t: f"{t.mixes_met} of {t.mixes}"),
        ("distractor closeness easy / medium / hard", lambda t: by_difficulty(t.closeness, ".3f")),
        ("share above recall easy / medium / hard", lambda t: by_difficulty(t.above_recall, ".0%")),
        ("requests with a shortfall", lambda t: str(t.shortfalls)),
        ("feedback rubric pass rate, sent", lambda t: pct(t.rubric_sent, t.feedback)),
        ("feedback rubric pass rate, first answer", lambda t: pct(t.rubric_first, t.feedback)),
    ]
    modes = list(results)
    lines = ["| measure | " + " | ".join(modes) + " |", "|---|" + "---|" * len(modes)]
    lines += [f"| {name} | " + " | ".join(cell(results[m]) for m in modes) + " |" for name, cell in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="offline,fake,fake-sloppy")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    args = parser.parse_args()
    prefix = f"gabay-bench-quality-{uuid.uuid4().hex[:8]}:"
    base = load_settings(gabay_key_prefix=prefix, openai_api_key=None, deepseek_api_key=None)
    client = redis.Redis.from_url(args.redis_url)
    try:
        results = {mode: measure(mode, client, base) for mode in args.modes.split(",")}
    finally:
        for key in client.scan_iter(match=f"{prefix}*", count=500):
            client.delete(key)
    print(f"{len(DOCUMENTS)} documents x ({len(DIFFICULTIES)} difficulties + 1 Bloom mix {MIX}), "
          f"10 questions each; {len(SUBMISSIONS)} submissions")
    print(table(results))


if __name__ == "__main__":
    main()
