"""Every Redis key gabay reads or writes, gabay's own and Dramatiq's layout, built in this one module.

All keys start with the prefix (``GABAY_KEY_PREFIX``, ``gabay:`` by default), so several gabay
deployments can share one Redis. Dramatiq's keys live under the namespace ``<prefix>dramatiq``;
their layout (``<ns>:<queue>``, ``<ns>:<queue>.msgs``, ``.DQ`` for delayed, ``.XQ`` for dead
letters, ``__acks__`` per worker and queue, ``__heartbeats__``) is Dramatiq's, written here once
so that nothing else re-derives it.
"""

from __future__ import annotations

from dataclasses import dataclass

DELAY_SUFFIX = ".DQ"
DEAD_SUFFIX = ".XQ"
#: ``messages(queue)`` is ``queue(queue)`` + this (Lua that has a queue key builds it).
MESSAGES_SUFFIX = ".msgs"


@dataclass(frozen=True)
class Keys:
    """The keys of one deployment (one prefix)."""

    prefix: str = "gabay:"

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # -- Dramatiq's layout ------------------------------------------------------------------------

    @property
    def namespace(self) -> str:
        """The RedisBroker namespace of gabay's broker."""
        return self.prefix + "dramatiq"

    def queue(self, queue: str) -> str:
        """The list of message ids ready in ``queue`` (``queue`` may be a ``.DQ`` name)."""
        return f"{self.namespace}:{queue}"

    def messages(self, queue: str) -> str:
        """The hash of message id -> encoded message of ``queue``."""
        return f"{self.namespace}:{queue}{MESSAGES_SUFFIX}"

    def delayed_messages(self, queue: str) -> str:
        return self.messages(queue + DELAY_SUFFIX)

    def dead_letters(self, queue: str) -> str:
        """The sorted set of dead-lettered message ids of ``queue``."""
        return f"{self.namespace}:{queue}{DEAD_SUFFIX}"

    def dead_messages(self, queue: str) -> str:
        """The hash of the dead-lettered messages of ``queue``."""
        return self.messages(queue + DEAD_SUFFIX)

    def acks(self, worker_id: str, queue: str) -> str:
        """The ids that worker process ``worker_id`` fetched from ``queue`` and has not acked."""
        return f"{self.acks_prefix}{worker_id}.{queue}"

    @property
    def acks_prefix(self) -> str:
        """``acks(worker, queue)`` is this + ``<worker>.<queue>`` (for Lua that builds it)."""
        return f"{self.namespace}:__acks__."

    @property
    def heartbeats(self) -> str:
        return f"{self.namespace}:__heartbeats__"

    # -- wake-ups (pub/sub channels, not keys; named here with the keys) ---------------------------

    def wake(self, queue: str) -> str:
        """The channel told when ``queue`` turns non-empty: idle consumers fetch at once."""
        return self._key("wake", queue)

    @property
    def wake_pattern(self) -> str:
        """Every queue's wake channel (PSUBSCRIBE pattern); ``wake(q)`` is this minus ``*`` + q."""
        return self._key("wake", "*")

    def signal(self, name: str) -> str:
        """The channel told when cluster state ``name`` changed (``pause``, ``restart``)."""
        return self._key("signal", name)

    @property
    def signal_pattern(self) -> str:
        return self._key("signal", "*")

    # -- recovery ---------------------------------------------------------------------------------

    def worker_queues(self, worker_id: str) -> str:
        """The queues (and delay queues) worker process ``worker_id`` registered at boot."""
        return self.worker_queues_prefix + worker_id

    @property
    def worker_queues_prefix(self) -> str:
        return self._key("consumes", "")

    @property
    def consumed_queues(self) -> str:
        """Every queue any worker process ever consumed: where a dead worker's acks may be."""
        return self._key("consumed-queues")

    # -- limits -----------------------------------------------------------------------------------

    def cap_holders(self, actor: str) -> str:
        """Sorted set of the running jobs' leases of a capped actor (score: lease expiry)."""
        return self._key("cap", actor)

    def cap_stats(self, actor: str) -> str:
        return self._key("cap", actor) + ":stats"

    @property
    def cap_index(self) -> str:
        """Set of every cap's holders key (for giving a dead worker's slots back)."""
        return self._key("caps")

    def rate_starts(self, actor: str) -> str:
        return self._key("rate", actor, "starts")

    def rate_schedule(self, actor: str) -> str:
        return self._key("rate", actor, "schedule")

    # -- waiting: due messages and cap waiting rooms ----------------------------------------------

    def due(self, queue: str) -> str:
        """Sorted set of the ids of ``queue`` waiting for a time (score: due, Redis clock ms).

        Their data is in ``messages(queue)``; deferrals, retries and delayed sends wait here.
        """
        return self._key("due", queue)

    def cap_waiting(self, actor: str) -> str:
        """Sorted set ``<queue key>|<id>`` of messages waiting for a slot (score: rank)."""
        return self._key("cap", actor) + ":waiting"

    def cap_waiting_since(self, actor: str) -> str:
        """The same members as ``cap_waiting``, scored by when they started waiting (ms)."""
        return self._key("cap", actor) + ":waiting-since"

    def cap_tenants(self, actor: str) -> str:
        """Hash tenant -> its lane (the rank of its last waiting message) for fair share."""
        return self._key("cap", actor) + ":tenants"

    @property
    def cap_waiting_index(self) -> str:
        """Hash waiting key -> ``<holders> <stats> <waiting-since> <limit> <queue>`` of caps with
        waiters (what the maintenance pass needs to hand their free slots on)."""
        return self._key("caps-waiting")

    @property
    def pause(self) -> str:
        return self._key("pause")

    # -- counters and state of the cluster --------------------------------------------------------

    def counters(self, queue: str) -> str:
        return self._key("stats", queue)

    def minute_counters(self, queue: str, minute: int) -> str:
        return self._key("stats", queue, "minute", str(minute))

    @property
    def failures(self) -> str:
        return self._key("stats", "failures")

    @property
    def running_index(self) -> str:
        return self._key("running")

    def running(self, worker_id: str) -> str:
        return self._key("running", worker_id)

    def published(self, worker_id: str) -> str:
        return self._key("published", worker_id)

    @property
    def finished_jobs(self) -> str:
        return self._key("jobs", "finished")

    @property
    def workers_index(self) -> str:
        return self._key("workers")

    def worker(self, worker_id: str) -> str:
        return self._key("workers", worker_id)

    def last_start(self, queue: str) -> str:
        return self._key("control", "last-start", queue)

    # -- control ----------------------------------------------------------------------------------

    @property
    def restart_generation(self) -> str:
        return self._key("control", "restart-generation")

    @property
    def restarts(self) -> str:
        """Counter of restarts: requested ones and automatic ones after a crash."""
        return self._key("restarts")

    def restart_claim(self, host: str, main_pid: int, generation: int) -> str:
        return self._key("control", "restart", host, str(main_pid), str(generation))

    def monitor_slot(self, slot: int) -> str:
        return self._key("control", "monitor", str(slot))

    # -- jobs and their effects -------------------------------------------------------------------

    def job(self, job_id: str) -> str:
        return self._key("job", job_id)

    @property
    def recent_jobs(self) -> str:
        return self._key("jobs", "recent")

    @property
    def llm_totals(self) -> str:
        return self._key("llm", "totals")

    def sent(self, job_id: str) -> str:
        """The sent record of a submission's email."""
        return self._key("sent", job_id)

    def probe(self, token: str) -> str:
        return self._key("probe", token)

    # -- alerts (gabay/alerts) --------------------------------------------------------------------

    def alert_incident(self, rule: str, subject: str) -> str:
        """Hash of the incident of one rule about one subject (a queue, an actor, a schedule)."""
        return self._key("alerts", "incident", rule, subject)

    def alert_subjects(self, rule: str) -> str:
        """Set of the subjects with an incident of ``rule`` (pending, firing or resolving)."""
        return self._key("alerts", "subjects", rule)

    def alert_cooldown(self, rule: str, subject: str) -> str:
        """Present for ``ALERT_COOLDOWN`` seconds after a firing alert was sent."""
        return self._key("alerts", "cooldown", rule, subject)

    def actor_runs(self, minute: int) -> str:
        """Hash ``<actor>:ok`` / ``<actor>:failed`` -> runs that ended in that minute."""
        return self._key("alerts", "runs", str(minute))

    def llm_spend_baseline(self, day: str) -> str:
        """The cumulative LLM cost when the UTC day ``day`` (YYYY-MM-DD) was first evaluated."""
        return self._key("alerts", "spend-baseline", day)

    @property
    def missed_schedules(self) -> str:
        """Hash schedule name -> JSON of its last missed slot, until it runs again."""
        return self._key("alerts", "missed-schedules")


    # -- autoscaling (gabay/cluster/autoscale_log.py) --------------------------------------------

    @property
    def autoscale_decisions(self) -> str:
        """List of the latest 50 scaling decisions of ``gabay workers --autoscale`` (JSON, newest first)."""
        return self._key("autoscale", "decisions")

    def test(self, *parts: str) -> str:
        """Keys of the test suite's and the benchmarks' own actors, under the same prefix."""
        return self._key("test", *parts)

    # -- scheduled jobs (gabay/schedules) ---------------------------------------------------------

    @property
    def schedule_leader(self) -> str:
        """``<fencing token> <identity>`` of the process that fires schedules, with a PX lease."""
        return self._key("schedules", "leader")

    @property
    def schedule_fencing(self) -> str:
        """Counter (INCR) giving each new leadership term its fencing token."""
        return self._key("schedules", "fencing")

    @property
    def schedule_paused(self) -> str:
        """Hash of schedule name -> ``1`` for each paused schedule."""
        return self._key("schedules", "paused")

    def schedule_state(self, name: str) -> str:
        """Hash of one schedule: the last slot handled, the last run (message id, outcome)."""
        return self._key("schedules", "state", name)

    def schedule_history(self, name: str) -> str:
        """List of one schedule's latest fires and misfire skips (JSON, newest first)."""
        return self._key("schedules", "history", name)


    # -- exam analytics (gabay/actors/analytics.py) -----------------------------------------------

    def analytics_pending(self, form_id: str) -> str:
        """Present (SET NX EX) while an analysis of exam ``form_id`` is enqueued: the debounce."""
        return self._key("analytics", "pending", form_id)

    # -- backups (gabay/backups) ------------------------------------------------------------------

    @property
    def backup_failed(self) -> str:
        """JSON ``{"at", "error"}`` of the last failed backup, until a backup succeeds (alert rule)."""
        return self._key("alerts", "backup-failed")

    # -- LLM spend and provider limits (gabay/llm, gabay/limits/provider_budget.py) ---------------

    def provider_budget(self, scope: str) -> str:
        """Hash of one provider x model x key's budget: learned limits, token and request buckets."""
        return self._key("llm", "budget", scope)

    def provider_hold(self, scope: str) -> str:
        """Present (PX) while a 429 holds ``scope`` cluster-wide; its value is the reason."""
        return self._key("llm", "hold", scope)

    def provider_inflight(self, scope: str) -> str:
        """Sorted set of ``scope``'s calls in flight (``<ticket>:<estimate>`` -> expiry, ms)."""
        return self._key("llm", "inflight", scope)

    @property
    def llm_cache_totals(self) -> str:
        """Hash ``<stage>:<provider>:prompt_tokens`` / ``:cached_tokens``: cluster-wide cache use."""
        return self._key("llm", "cache")

    def llm_spend_day(self, day: str) -> str:
        """Hash ``cluster`` -> USD spent on LLM calls on UTC day ``day`` (YYYY-MM-DD), 3 days."""
        return self._key("llm", "spend", day)

    @property
    def provider_quota_exhausted(self) -> str:
        """Hash provider -> JSON of its latest quota/billing exhaustion (the provider_quota alert)."""
        return self._key("llm", "quota-exhausted")

    # -- memory-based recycling (gabay/middleware/memory_limit.py) --------------------------------

    @property
    def memory_recycles(self) -> str:
        """Counter of worker processes recycled because they grew past ``WORKER_MAX_MEMORY``."""
        return self._key("memory-recycles")

    def memory_recycle_claim(self, host: str, main_pid: int) -> str:
        """Present (SET NX EX) while one process of this dramatiq command asked it to reload."""
        return self._key("control", "memory-recycle", host, str(main_pid))

    # -- operator console: job index, cancel, retry (gabay/console, gabay/cluster/job_index.py) --

    def job_index(self, facet: str = "all", value: str = "") -> str:
        """Sorted set of job ids (score: the job's creation time) of one facet value:
        ``all``, ``kind``, ``status``, ``queue`` or ``tenant`` (see gabay.cluster.job_index)."""
        return self._key("jobs", "index", facet, value) if value else self._key("jobs", "index", facet)

    @property
    def cancel_requests(self) -> str:
        """Sorted set of the job ids whose cancel was requested (score: ``cancel_sequence``)."""
        return self._key("cancel", "requests")

    @property
    def cancel_sequence(self) -> str:
        """Counter giving each cancel request its place, so that workers read only new ones."""
        return self._key("cancel", "sequence")

    def dead_letter_of(self, job_id: str) -> str:
        """``<queue> <redis message id>`` of the job's latest dead-lettered message (EX: dead TTL)."""
        return self._key("jobs", "dead-letter", job_id)

    # -- privacy: claim check (gabay/cluster/claim_check.py) --------------------------------------

    def claim(self, ref: str) -> str:
        """The payload (JSON args and kwargs) of the messages that carry claim check ``ref``."""
        return self._key("claim", ref)

    def claims_of(self, subject: str) -> str:
        """Set of the claim checks whose payload holds personal data of ``subject`` (``st-...``)."""
        return self._key("claims", subject)

    # -- metrics histograms (gabay/cluster/stats.py) ----------------------------------------------

    def histograms(self, name: str) -> str:
        """Hash ``<labels>|<bucket>`` -> count, ``<labels>|sum``, ``<labels>|count`` of histogram
        ``name`` (cluster-wide, added to by every worker's publication)."""
        return self._key("histograms", name)
