"""Cluster-wide histograms in Redis: job duration and wait per actor, LLM call latency.

Each histogram is one hash (``histograms:<name>``) whose fields are ``<labels>\\t<bucket>`` (the
count of observations in that bucket, not cumulative), ``<labels>\\tsum`` and ``<labels>\\tcount``;
labels are the label values joined by tabs. Every process adds to them with HINCRBY /
HINCRBYFLOAT, so any number of processes sum to exact cluster-wide figures. The job histograms are
added in the worker's buffered publication (:mod:`gabay.cluster.stats_buffer`, no Redis call per
job); the LLM one in the same pipeline that records the call's tokens.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from gabay.keys import Keys

SEP = "\t"
INF = math.inf

#: Upper bounds (seconds) of each histogram's buckets; the last bucket is +Inf.
BUCKETS: dict[str, tuple[float, ...]] = {
    "job_duration_seconds": (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
    "job_wait_seconds": (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600),
    "llm_call_seconds": (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120),
}
#: Label names of each histogram, in the order of their values in the fields.
LABELS: dict[str, tuple[str, ...]] = {
    "job_duration_seconds": ("queue", "actor"),
    "job_wait_seconds": ("queue", "actor"),
    "llm_call_seconds": ("provider", "model"),
}


def fields(name: str, labels: Sequence[str], value: float) -> tuple[str, str, str]:
    """The bucket, sum and count fields one observation of ``value`` adds to."""
    bounds = BUCKETS[name]
    index = bisect.bisect_left(bounds, value)
    bucket = _bound(bounds[index]) if index < len(bounds) else "+Inf"
    prefix = SEP.join(labels) + SEP
    return prefix + bucket, prefix + "sum", prefix + "count"


def observe_into(pipe: redis.client.Pipeline, keys: Keys, name: str, labels: Sequence[str],
                 value: float) -> None:
    """Add one observation in the caller's pipeline (no round trip of its own)."""
    bucket, total, count = fields(name, labels, value)
    key = keys.histograms(name)
    pipe.hincrby(key, bucket, 1)
    pipe.hincrbyfloat(key, total, value)
    pipe.hincrby(key, count, 1)


@dataclass
class Series:
    """One label set of a histogram: cumulative counts per upper bound, sum and count."""

    labels: tuple[str, ...]
    buckets: list[tuple[str, float]]  # (le, cumulative count), ending with +Inf
    total: float
    count: float


def read(client: redis.Redis, keys: Keys, name: str) -> list[Series]:
    """Every label set of histogram ``name``, sorted by labels."""
    raw = client.hgetall(keys.histograms(name))
    per: dict[tuple[str, ...], dict[str, float]] = {}
    for field, value in raw.items():
        *labels, part = field.decode().split(SEP)
        per.setdefault(tuple(labels), {})[part] = float(value)
    bounds = [*(_bound(b) for b in BUCKETS[name]), "+Inf"]
    found = []
    for labels, parts in sorted(per.items()):
        running, cumulative = 0.0, []
        for le in bounds:
            running += parts.get(le, 0.0)
            cumulative.append((le, running))
        found.append(Series(labels, cumulative, parts.get("sum", 0.0), running))
    return found


def _bound(value: float) -> str:
    return repr(float(value))
