"""``/metrics``: Prometheus text format computed from the cluster-wide state in Redis.

Dramatiq's own Prometheus middleware keeps per-process files and binds a port per host; these
numbers instead come from the counters, gauges and histograms that every worker process keeps in
Redis (published in its buffered 0.25 s transaction, see :mod:`gabay.cluster.stats_buffer`), so
one scrape of the dashboard is right for any number of worker processes on any number of hosts.
With Redis down the scrape still answers 200, with ``gabay_redis_up 0``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gabay.cluster import histograms
from gabay.cluster.status import ClusterStatus
from gabay.web import view
from gabay.web.sources import Sources

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Per-queue event counters (``gabay_messages_<name>_total``) beside completed and failed.
EVENT_COUNTERS = {
    "retried": "Failed runs that Retries scheduled again (each retry once)",
    "deferred": "Messages held back by a concurrency cap or a rate limit and re-enqueued",
    "requeued": "Messages put back by a pause or a drain",
    "cancelled": "Jobs cancelled by an operator",
}
#: The histograms the workers publish (gabay.cluster.histograms): name -> help.
HISTOGRAMS = {
    "job_duration_seconds": "Run time of a job's message, per queue and actor (each attempt)",
    "job_wait_seconds": "Time from send to the start of the first run, per queue and actor "
                        "(delays, deferrals and waiting for a slot included)",
    "llm_call_seconds": "Latency of language model calls, per provider and model",
}

QUEUE_GAUGES = {
    "waiting": "Messages ready in the queue, not yet fetched by a worker",
    "delayed": "Delayed messages: delayed sends, deferrals by limits and pauses, retry backoffs",
    "running": "Messages being processed right now",
    "dead_lettered": "Messages in the dead-letter set (final failures)",
    "consumers": "Live worker processes consuming the queue",
    "held": "Messages waiting in a capped actor's waiting room for a slot",
    "held_tenants": "Tenants (teachers) with messages in the waiting room",
}


class ClusterCollector(Collector):
    """Reads the sources once per scrape and yields every gabay metric."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        status = self.sources.manager.get_status()
        if not status.redis_reachable:  # still a 200: the scrape must see gabay_redis_up 0
            yield _gauge("gabay_up", "1 when the cluster is healthy, else 0", 0)
            yield _gauge("gabay_redis_up", "1 when Redis answers", 0)
            return
        yield _gauge("gabay_up", "1 when the cluster is healthy, else 0", int(status.healthy))
        yield _gauge("gabay_redis_up", "1 when Redis answers", int(status.redis_reachable))
        yield _gauge("gabay_workers", "Live worker processes, all hosts", status.workers.worker_count)
        yield _gauge("gabay_worker_threads", "Worker threads summed over the live processes",
                     status.workers.concurrency)
        yield _gauge("gabay_uptime_seconds", "Seconds since the oldest live worker process started",
                     status.uptime)
        restarts = CounterMetricFamily("gabay_restarts", "Restarts of the worker system")
        restarts.add_metric([], status.restart_attempts)
        yield restarts
        yield from _queue_metrics(status.per_queue)
        yield from _desired_metrics(status)
        yield from _llm_metrics(view.llm_usage(self.sources), self.sources.jobs.totals())
        yield from _llm_cache_metrics(self.sources.jobs.cache_totals())
        yield from self._events(sorted(status.per_queue))
        yield from self._histograms()

    def _events(self, queues: list[str]) -> Iterator[Metric]:
        families = {name: CounterMetricFamily(f"gabay_messages_{name}", text, labels=["queue"])
                    for name, text in EVENT_COUNTERS.items()}
        oldest = GaugeMetricFamily("gabay_queue_oldest_message_age_seconds",
                                   "Seconds since the oldest ready message of the queue was sent "
                                   "(0 when none waits)", labels=["queue"])
        for queue, age in sorted(self.sources.stats.oldest_waiting(queues).items()):
            oldest.add_metric([queue], age)
        for queue in queues:
            counters = self.sources.stats.raw_counters(queue)
            for name, family in families.items():
                family.add_metric([queue], counters.get(name, 0))
        yield oldest
        yield from families.values()

    def _histograms(self) -> Iterator[Metric]:
        for name, text in HISTOGRAMS.items():
            family = HistogramMetricFamily(f"gabay_{name}", text,
                                           labels=list(histograms.LABELS[name]))
            for series in self.sources.stats.histogram(name):
                family.add_metric(list(series.labels), series.buckets, series.total)
            yield family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _queue_metrics(per_queue: dict) -> Iterator[Metric]:
    gauges = {key: GaugeMetricFamily(f"gabay_queue_{key}", text, labels=["queue"])
              for key, text in QUEUE_GAUGES.items()}
    paused = GaugeMetricFamily("gabay_queue_paused", "1 when the queue is paused", labels=["queue"])
    completed = CounterMetricFamily("gabay_messages_completed", "Messages processed successfully",
                                    labels=["queue"])
    failed = CounterMetricFamily("gabay_messages_failed", "Messages that failed for good",
                                 labels=["queue"])
    by_priority = GaugeMetricFamily("gabay_queue_held_by_priority",
                                    "Messages in the waiting room, per priority",
                                    labels=["queue", "priority"])
    for name, queue in sorted(per_queue.items()):
        for key, gauge in gauges.items():
            gauge.add_metric([name], getattr(queue, key))
        for priority, count in sorted(queue.held_by_priority.items()):
            by_priority.add_metric([name, priority], count)
        paused.add_metric([name], int(queue.paused))
        completed.add_metric([name], queue.completed)
        failed.add_metric([name], queue.failed)
    yield from gauges.values()
    yield from (by_priority, paused, completed, failed)


def _desired_metrics(status: ClusterStatus) -> Iterator[Metric]:
    """What an external autoscaler (KEDA, HPA) should run: within each queue's cap and rate limit."""
    per_queue = GaugeMetricFamily(
        "gabay_desired_replicas", "Worker processes the queue's work can use now, within its cap "
        "and rate limit (0: no work)", labels=["queue"])
    for name, queue in sorted(status.per_queue.items()):
        per_queue.add_metric([name], queue.desired_replicas)
    yield per_queue
    yield _gauge("gabay_cluster_desired_replicas", "Worker processes the whole work can use, within "
                 "AUTOSCALE_MIN_PROCESSES and AUTOSCALE_MAX_PROCESSES", status.desired_replicas)


def _llm_metrics(usage: list[dict], totals: dict[str, dict[str, float]]) -> Iterator[Metric]:
    labels = ["provider", "model"]
    calls = CounterMetricFamily("gabay_llm_calls", "Calls to language models", labels=labels)
    tokens = CounterMetricFamily("gabay_llm_tokens", "Tokens used by language model calls",
                                 labels=[*labels, "kind"])
    cost = CounterMetricFamily("gabay_llm_cost_usd", "Cost of language model calls in US dollars",
                               labels=labels)
    for row in usage:
        key = [row["provider"], row["model"]]
        calls.add_metric(key, row["calls"])
        tokens.add_metric([*key, "prompt"], row["prompt_tokens"])
        tokens.add_metric([*key, "completion"], row["completion_tokens"])
        # of the prompt tokens, those read from the provider's prompt cache
        cached = totals.get(f"{row['provider']}:{row['model']}", {}).get("cached_tokens", 0)
        tokens.add_metric([*key, "cached"], cached)
        cost.add_metric(key, row["cost_usd"])
    yield from (calls, tokens, cost)


def _llm_cache_metrics(totals: dict[str, dict[str, dict[str, int]]]) -> Iterator[Metric]:
    """Prompt caching per stage and provider (gabay.jobs.JobStore.cache_totals)."""
    labels = ["stage", "provider"]
    tokens = CounterMetricFamily("gabay_llm_stage_tokens", "Prompt tokens of language model calls "
                                 "per stage, and of them those read from the provider's cache",
                                 labels=[*labels, "kind"])
    share = GaugeMetricFamily("gabay_llm_cached_share", "Share of a stage's prompt tokens read "
                              "from the provider's prompt cache (0 to 1)", labels=labels)
    for stage, providers in sorted(totals.items()):
        for provider, counts in sorted(providers.items()):
            prompt, cached = counts.get("prompt_tokens", 0), counts.get("cached_tokens", 0)
            tokens.add_metric([stage, provider, "prompt"], prompt)
            tokens.add_metric([stage, provider, "cached"], cached)
            share.add_metric([stage, provider], cached / prompt if prompt else 0.0)
    yield from (tokens, share)


def render(sources: Sources) -> bytes:
    """The exposition text of one scrape; with Redis gone mid-scrape, the status part only."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterCollector(sources))
    try:
        return generate_latest(registry)
    except redis.RedisError as exc:
        logger.warning("Redis failed during a metrics scrape: %s", type(exc).__name__)
        fallback = CollectorRegistry(auto_describe=False)
        fallback.register(_RedisDown())
        return generate_latest(fallback)


class _RedisDown(Collector):
    def collect(self) -> Iterator[Metric]:
        yield _gauge("gabay_up", "1 when the cluster is healthy, else 0", 0)
        yield _gauge("gabay_redis_up", "1 when Redis answers", 0)
