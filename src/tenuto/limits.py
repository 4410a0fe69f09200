"""Flow-control limits, as :meth:`tenuto.Client.limits` shows them.

A limit is a pause that lets some work through: at most ``max_concurrent`` executions
of an activity running at once and at most ``per_second`` starts in any second, or at
most ``max_concurrent`` instances of an orchestrator RUNNING at once (the others wait
PENDING, highest ``priority`` first, then in start order). Limits hold across every
worker process (they are counted in the database when work is claimed) and apply at
once to work not yet started. Work a pause holds never starts, whatever the limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Limit:
    """A flow-control limit of an activity or orchestrator (``kind``)."""

    kind: str  #: "activity" or "orchestrator"
    name: str
    #: Activities: the most executions running at once. Orchestrators: the most
    #: instances RUNNING at once (``max_running``).
    max_concurrent: int | None
    #: Activities: the most starts in any second (below 1: one per ``1/per_second`` s).
    per_second: float | None
    reason: str | None
    by: str | None
    since: datetime
    #: "client" (set by a call) or "code" (declared with ``@app.activity(...)``).
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "max_concurrent": self.max_concurrent,
            "per_second": self.per_second,
            "reason": self.reason,
            "by": self.by,
            "since": self.since.isoformat(),
            "source": self.source,
        }


__all__ = ["Limit"]
