"""The three stages of question generation, apart from Dramatiq: retrieval, drafting, validation.

Each stage reads a typed input, records its timing and calls on the job record, and returns the
typed input of the next stage. A stage that runs twice (at-least-once delivery) overwrites its
own entries on the record (details, calls of that stage) instead of appending to them.

The end of a job (:meth:`QuestionStages.conclude`, then :meth:`QuestionStages.succeed`) keeps the
result on the job record, writes it and the job's LLM calls to the results store, and only then
marks the job succeeded, linking to the stored row (``details.stored``).
"""

from __future__ import annotations

import time
from collections import Counter

from gabay.cluster.intake import Guard, always_owned
from gabay.errors import JobFinished
from gabay.jobs import JobRecord, JobStatus, JobStore, LLMCall, StageTiming
from gabay.llm.job_calls import JobCalls, has_checkpoint
from gabay.llm.providers import offline_call
from gabay.questions.checks import (
    is_duplicate,
    pick_final,
    source_problem,
    structural_problem,
    tidy,
    to_question,
)
from gabay.questions.gate import bloom_mix, judge_round_trip, offline_answers, screen_flaws
from gabay.questions.models import Draft, QuestionRequest, QuestionResult, QuestionTask, Rejection
from gabay.questions.offline.drafts import generate_drafts
from gabay.questions.prompts import (
    DRAFT_SYSTEM,
    VALIDATE_SYSTEM,
    cache_key,
    check_drafts,
    check_verdicts,
    draft_prompt,
    parse_drafts,
    parse_verdicts,
    validate_prompt,
)
from gabay.questions.retrieval import select_passages, split_passages
from gabay.questions.round_trip import ANSWER_SYSTEM, answer_prompt, check_answers, parse_answers
from gabay.questions.stored import UNSTORED, keep, kept, question_facts
from gabay.settings import Settings
from gabay.store.records import QuestionFacts
from gabay.store.results import ResultsStore

MAX_ROUNDS = 2


def stage_name(base: str, round_: int) -> str:
    return base if round_ == 1 else f"{base}-{round_}"


class QuestionStages:
    """The stage logic, bound to a job store and settings.

    ``guard`` raises OwnershipLost when this process no longer owns the stage message it runs
    (see :mod:`gabay.middleware.ownership`): it is called when a stage begins (before its LLM call)
    and before its outcome is written (and the next stage sent). ``results``: the results store
    (None: nothing is stored).
    """

    def __init__(self, store: JobStore, settings: Settings,
                 guard: Guard = always_owned, results: ResultsStore | None = None) -> None:
        self.store = store
        self.settings = settings
        self.guard = guard
        self.results = results

    def begin(self, job_id: str, stage: str) -> None:
        """Start (or restart) a stage: its timing, and no calls or details left from a first run.

        A finished job is never reopened by a stage: a late duplicate of one of its messages
        raises JobFinished (only ``regenerate`` reopens a job, before its first stage).
        """
        self.guard()

        def change(record: JobRecord) -> None:
            if record.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
                raise JobFinished(f"job {job_id} already {record.status}; stage {stage} not run again")
            if not has_checkpoint(record, stage):  # a kept paid answer keeps its call records
                record.calls = [c for c in record.calls if c.stage != stage]
            record.details.pop(stage, None)
            record.status = JobStatus.RUNNING
            record.stage = stage
            record.stages[stage] = StageTiming(started_at=time.time())

        self.store.update(job_id, change)

    def finish(self, job_id: str, stage: str, **details: object) -> None:
        """Record the stage's outcome and its end time, in one write."""
        self.guard()

        def change(record: JobRecord) -> None:
            record.details[stage] = details
            timing = record.stages.setdefault(stage, StageTiming(started_at=time.time()))
            timing.finished_at = time.time()

        self.store.update(job_id, change)

    def record(self, job_id: str) -> RecordCall:
        return RecordCall(self.store, job_id)

    def calls(self, job_id: str) -> JobCalls:
        """The job's paid calls: checkpointed, within its token budget and the provider budgets."""
        return JobCalls.shared(self.store, job_id, self.settings)

    def retrieve(self, job_id: str, request: QuestionRequest) -> QuestionTask:
        self.begin(job_id, "retrieval")
        passages = split_passages(request.document.text)
        selected = select_passages(passages, request.topic, request.count)
        self.finish(job_id, "retrieval", passages=len(passages), selected=[p.id for p in selected],
                    method="bm25" if request.topic else "coverage")
        return QuestionTask.from_request(job_id, request, selected)

    def draft(self, task: QuestionTask) -> QuestionTask:
        stage = stage_name("generation", task.round)
        self.begin(task.job_id, stage)
        wanted = task.drafts_wanted
        calls = self.calls(task.job_id)
        chain = calls.chain("draft")
        malformed = 0
        if chain:
            completion = calls.complete(chain, DRAFT_SYSTEM, draft_prompt(task, wanted), stage=stage,
                                        cache_key=cache_key(task),
                                        check=lambda data: check_drafts(data, task))
            drafts, malformed = parse_drafts(completion.data, task)
            provider = completion.call.provider
        else:
            started = time.monotonic()
            drafts = generate_drafts(task, wanted)
            self.record(task.job_id)(offline_call(stage, (time.monotonic() - started) * 1000))
            provider = "offline"
        self.finish(task.job_id, stage, wanted=wanted, drafts=len(drafts), malformed=malformed,
                    provider=provider)
        return task.model_copy(update={"drafts": drafts})

    def validate(self, task: QuestionTask) -> QuestionTask:
        """Drop drafts that fail the checks, keep the reasons; the survivors join ``accepted``."""
        stage = stage_name("validation", task.round)
        self.begin(task.job_id, stage)
        accepted = list(task.accepted)
        rejected: list[Rejection] = []
        candidates: list[Draft] = []
        for draft in (tidy(d) for d in task.drafts):
            reason = structural_problem(draft, task)
            kept = accepted + [to_question(c, task, 0) for c in candidates]
            if reason is None and is_duplicate(draft, kept):
                reason = "duplicate of another question"
            if reason:
                rejected.append(Rejection(draft_id=draft.id, question=draft.question, reason=reason))
            else:
                candidates.append(draft)
        candidates, flawed = screen_flaws(task, candidates)  # the quality gate: gabay.questions.gate
        answers, answered_by = self._blind_answers(task, candidates, stage)
        candidates, disagreed, scores = judge_round_trip(candidates, answers, answered_by)
        rejected += flawed + disagreed
        problems = self._semantic_problems(task, candidates, stage)
        for draft in candidates:
            if problems.get(draft.id):
                rejected.append(Rejection(draft_id=draft.id, question=draft.question,
                                          reason=problems[draft.id], quality=scores.get(draft.id)))
            else:
                accepted.append(to_question(draft, task, len(accepted) + 1, scores.get(draft.id)))
        self.finish(task.job_id, stage, checked=len(task.drafts), accepted=len(accepted) - len(task.accepted),
                    rejected=[r.model_dump() for r in rejected])
        return task.model_copy(update={"drafts": [], "accepted": accepted,
                                       "rejected": [*task.rejected, *rejected]})

    def _blind_answers(self, task: QuestionTask, drafts: list[Draft],
                       stage: str) -> tuple[dict[str, str], str]:
        """Draft id -> its answer by a model that never sees the keys (offline: term overlap); by whom."""
        calls = self.calls(task.job_id)
        chain = calls.chain("validate") if drafts else []
        if not chain:
            return offline_answers(task, drafts), "offline"
        completion = calls.complete(chain, ANSWER_SYSTEM, answer_prompt(task, drafts),
                                    stage=f"{stage}-round-trip", cache_key=cache_key(task),
                                    check=lambda data: check_answers(data, drafts))
        return parse_answers(completion.data), f"{completion.call.provider}:{completion.call.model}"

    def _semantic_problems(self, task: QuestionTask, drafts: list[Draft], stage: str) -> dict[str, str]:
        """Draft id -> why the answer is not supported, by the LLM, or by the source text offline."""
        if not drafts:
            return {}
        calls = self.calls(task.job_id)
        chain = calls.chain("validate")
        if not chain:
            started = time.monotonic()
            problems = {d.id: source_problem(d, task) or "" for d in drafts}
            self.record(task.job_id)(offline_call(stage, (time.monotonic() - started) * 1000))
            return problems
        completion = calls.complete(chain, VALIDATE_SYSTEM, validate_prompt(task, drafts), stage=stage,
                                    cache_key=cache_key(task),
                                    check=lambda data: check_verdicts(data, drafts))
        verdicts = parse_verdicts(completion.data)
        problems = {}
        for draft in drafts:
            ok, reason = verdicts.get(draft.id, (False, "the validator gave no verdict"))
            problems[draft.id] = "" if ok else (reason or "rejected by the validator")
        return problems

    def needs_another_round(self, task: QuestionTask) -> bool:
        return len(task.accepted) < task.count and task.round < MAX_ROUNDS

    def result(self, task: QuestionTask) -> QuestionResult:
        questions = pick_final(task.accepted, task.count, task.question_types, task.bloom_mix)
        shortfall = None
        if len(questions) < task.count:
            reasons = Counter(r.reason for r in task.rejected).most_common(2)
            why = "; ".join(f"{reason} ({n})" for reason, n in reasons) or "the passages gave no more drafts"
            shortfall = (f"only {len(questions)} of {task.count} questions passed validation after "
                         f"{task.round} generation rounds; rejected drafts: {len(task.rejected)} ({why})")
        return QuestionResult(document_id=task.document_id, count=task.count, questions=questions,
                              shortfall=shortfall, rejected=len(task.rejected),
                              bloom=bloom_mix(task, questions))

    def conclude(self, task: QuestionTask) -> tuple[QuestionResult, QuestionFacts]:
        """The job's result and what the store keeps of it, kept on the job record until stored."""
        result = self.result(task)
        facts = question_facts(task, result, self.store.get(task.job_id))
        self.guard()
        kept_result = keep(result, facts)
        self.store.update(task.job_id, lambda record: record.details.__setitem__(UNSTORED, kept_result))
        return result, facts

    def unstored(self, job_id: str) -> tuple[QuestionResult, QuestionFacts] | None:
        """A result an earlier attempt concluded and could not store (the job is still running)."""
        record = self.store.get(job_id)
        return kept(record.details) if record.status is JobStatus.RUNNING else None

    def succeed(self, job_id: str, result: QuestionResult, facts: QuestionFacts) -> None:
        """Store the result and the job's calls, then mark the job succeeded with a link to the row."""
        stored = None
        if self.results is not None:
            stored = self.results.record_question_result(facts)
            record = self.store.get(job_id)
            self.results.record_calls(job_id, record.calls,
                                      {stage: timing.started_at for stage, timing in record.stages.items()})
        self.guard()

        def change(record: JobRecord) -> None:
            record.status = JobStatus.SUCCEEDED
            record.result = result.model_dump(mode="json")
            record.error = None
            record.details.pop(UNSTORED, None)
            record.details["shortfall"] = result.shortfall
            if stored is not None:
                record.details["stored"] = stored

        self.store.update(job_id, change)


class RecordCall:
    """Callable that adds an LLM call to a job record (what ``complete_with_fallback`` needs)."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store = store
        self.job_id = job_id

    def __call__(self, call: LLMCall) -> None:
        self.store.add_call(self.job_id, call)
