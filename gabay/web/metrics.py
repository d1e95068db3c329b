"""``/metrics``: Prometheus text format computed from the cluster-wide state in Redis.

Dramatiq's own Prometheus middleware keeps per-process files and binds a port per host; these
numbers instead come from the counters and gauges that every worker process keeps in Redis, so one
scrape of the dashboard is right for any number of worker processes on any number of hosts.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gabay.cluster.status import ClusterStatus
from gabay.web import view
from gabay.web.sources import Sources

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

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
        yield from _llm_metrics(view.llm_usage(self.sources))


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


def _llm_metrics(usage: list[dict]) -> Iterator[Metric]:
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
        cost.add_metric(key, row["cost_usd"])
    yield from (calls, tokens, cost)


def render(sources: Sources) -> bytes:
    """The exposition text of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterCollector(sources))
    return generate_latest(registry)
