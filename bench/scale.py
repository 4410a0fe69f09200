"""Workload sizes: the full sizes of issue 6, and a ``--quick`` smoke-test variant."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Scale:
    """How big each workload is."""

    a_workflows: int = 1000  # (a) orchestrations of 1 activity
    b_workflows: int = 200  # (b) orchestrations of ...
    b_steps: int = 5  # ... 5 activities each
    c_steps: int = 100  # (c) one orchestration of 100 sequential activities
    d_steps: int = 5000  # (d) one orchestration of 5,000 sequential activities
    d_window: int = 500  # (d) compare the first and the last 500 steps
    e_samples: int = 200  # (e) pause/resume samples
    f_instances: int = 10_000  # (f) and (g) instances paused and resumed in bulk
    s_workflows: int = 200  # (s) SDK orchestrations of ...
    s_steps: int = 5  # ... 5 activities each
    warmup: int = 10  # one-activity orchestrations run before measuring (both systems)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scale:
        return cls(**data)


FULL = Scale()
QUICK = Scale(
    a_workflows=100,
    b_workflows=20,
    c_steps=50,
    d_steps=600,
    d_window=100,
    e_samples=8,
    f_instances=300,
    s_workflows=20,
    warmup=3,
)
