"""Prometheus metrics, served at ``/metrics`` by ``tenuto serve``.

Counters and the step histogram are per process (each worker process counts its own
work); ``tenuto_instances`` is read from the database at scrape time, so every process
reports the same, global, numbers.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from . import tracking
from .status import Status

registry = CollectorRegistry(auto_describe=True)

activities_started = Counter(
    "tenuto_activities_started",
    "Activity attempts started by this process.",
    ["activity"],
    registry=registry,
)
activities_completed = Counter(
    "tenuto_activities_completed",
    "Activity attempts that returned.",
    ["activity"],
    registry=registry,
)
activities_failed = Counter(
    "tenuto_activities_failed",
    "Activity attempts that raised.",
    ["activity"],
    registry=registry,
)
step_seconds = Histogram(
    "tenuto_step_seconds",
    "Orchestration step latency: from the moment its work was due to its commit.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=registry,
)
transitions = Counter(
    "tenuto_transitions",
    "Instance state changes made by this process (paused, resumed, completed, ...).",
    ["event"],
    registry=registry,
)


def _observe(event: str, data: dict[str, Any]) -> None:
    transitions.labels(event).inc()


tracking.observers.append(_observe)


class InstanceCounts(Collector):
    """``tenuto_instances{status=...}``: instances per status, read at scrape time."""

    def __init__(self, counts: Any) -> None:
        self._counts = counts

    def collect(self) -> Any:
        family = GaugeMetricFamily(
            "tenuto_instances", "Instances by runtime status.", labels=["status"]
        )
        counts: dict[Status, int] = self._counts()
        for status in Status:
            family.add_metric([status.value], counts.get(status, 0))
        yield family
