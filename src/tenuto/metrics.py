"""Prometheus metrics, served at ``/metrics`` by ``tenuto serve``.

Counters and the step histogram are per process (each worker process counts its own
work); ``tenuto_instances`` is read from the database at scrape time, and so are the
counters fed from the tracking outbox (``tenuto_events_total``, ``tenuto_pauses_total``,
see :mod:`tenuto.outbox`), so every process reports the same, global, numbers.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from . import tracking
from .status import Status
from .store.outbox import DrainState

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
    "Instance state changes made by this process (paused, resumed, completed, ...); "
    "tenuto_events_total counts those of every process.",
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


class OutboxCounts(Collector):
    """The counters fed from the tracking outbox, read at scrape time (the same in every
    process): ``tenuto_events_total{event}`` (records emitted, of any process),
    ``tenuto_pauses_total{source}`` (pauses, by who or what made them), and the gauge
    ``tenuto_outbox_pending`` (records not yet emitted)."""

    def __init__(self, counts: Any, state: Any) -> None:
        self._counts = counts
        self._state = state

    def collect(self) -> Any:
        rows: list[tuple[str, str, int]] = self._counts()
        events: dict[str, int] = {}
        pauses: dict[str, int] = {}
        for event, source, n in rows:
            events[event] = events.get(event, 0) + n
            if event == "paused":
                pauses[source] = pauses.get(source, 0) + n
        family = CounterMetricFamily(
            "tenuto_events",
            "Tracking records emitted from the outbox (state changes of every process).",
            labels=["event"],
        )
        for event, n in sorted(events.items()):
            family.add_metric([event], n)
        yield family
        family = CounterMetricFamily(
            "tenuto_pauses",
            "Instance pauses, by source (client, parent, orchestrator, orchestration).",
            labels=["source"],
        )
        for source, n in sorted(pauses.items()):
            family.add_metric([source], n)
        yield family
        state: DrainState = self._state()
        gauge = GaugeMetricFamily(
            "tenuto_outbox_pending", "Tracking records written and not yet emitted."
        )
        gauge.add_metric([], state.pending + state.sequenced - state.emitted)
        yield gauge
