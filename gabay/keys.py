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
#: ``cap_wake(actor)`` is ``cap_holders(actor)`` + this (Lua that has a holders key builds it).
CAP_WAKE_SUFFIX = ":wake"


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
        return f"{self.namespace}:{queue}.msgs"

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

    def cap_wake(self, actor: str) -> str:
        """List a release pushes to, so that a waiter blocked on it wakes up."""
        return self.cap_holders(actor) + CAP_WAKE_SUFFIX

    @property
    def cap_index(self) -> str:
        """Set of every cap's holders key (for giving a dead worker's slots back)."""
        return self._key("caps")

    def rate_starts(self, actor: str) -> str:
        return self._key("rate", actor, "starts")

    def rate_schedule(self, actor: str) -> str:
        return self._key("rate", actor, "schedule")

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

    def test(self, *parts: str) -> str:
        """Keys of the test suite's and the benchmarks' own actors, under the same prefix."""
        return self._key("test", *parts)
