"""What an instance has in flight (:class:`PendingWork`), and who is working
(:class:`WorkerInfo`): the answers to "is it safe to do the maintenance now?".

A pause stops what has not started; what had started runs to its end and its result
waits for the resume (rule 2 of the pause contract). :meth:`tenuto.Client.pending_work`
shows both halves, and ``drained`` says when nothing of the instance (its
sub-orchestrations included) is running any more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .status import Status


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class RunningActivity:
    """An activity executing now: its attempt holds a worker's lease."""

    name: str
    task_id: int
    attempt: int
    started_at: datetime | None
    #: The worker running it (its id, as :meth:`tenuto.Client.workers` lists it).
    worker: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task_id": self.task_id,
            "attempt": self.attempt,
            "started_at": _iso(self.started_at),
            "worker": self.worker,
        }


@dataclass(frozen=True, slots=True)
class WaitingResult:
    """A finished activity (or sub-orchestration) whose result the orchestration has not
    taken yet: it is handed over at the next step, after the resume if paused."""

    name: str | None
    task_id: int
    finished_at: datetime
    ok: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task_id": self.task_id,
            "finished_at": self.finished_at.isoformat(),
            "ok": self.ok,
        }


@dataclass(frozen=True, slots=True)
class QueuedActivity:
    """An activity not started yet. ``held_by`` says why it does not start: ``"pause"``
    (its instance is paused), ``"standing pause"`` (its activity type is), or ``None``
    (nothing holds it: it starts when a worker serving it is free, or at
    ``start_at``, a retry's delay)."""

    name: str
    task_id: int
    attempt: int
    held_by: str | None
    start_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task_id": self.task_id,
            "attempt": self.attempt,
            "held_by": self.held_by,
            "start_at": _iso(self.start_at),
        }


@dataclass(frozen=True, slots=True)
class PendingTimer:
    """A durable timer; one whose time has passed while paused fires after the resume."""

    task_id: int
    fire_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "fire_at": self.fire_at.isoformat()}


@dataclass(frozen=True, slots=True)
class AwaitedEvent:
    """An external event the orchestration waits for, with its deadline (``None``: it
    waits without a timeout)."""

    name: str
    timeout_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "timeout_at": _iso(self.timeout_at)}


@dataclass(frozen=True, slots=True)
class ChildWork:
    """A sub-orchestration, and whether nothing of it is running."""

    instance_id: str
    name: str
    status: Status
    drained: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "name": self.name,
            "status": self.status.value,
            "drained": self.drained,
        }


@dataclass(frozen=True, slots=True)
class PendingWork:
    """What an instance has in flight, read in one consistent view.

    ``running``: activities executing now. ``waiting_results``: results stored but not
    yet handed to the orchestration (a paused instance gets them after its resume).
    ``held``: activities that do not start because of a pause or a standing pause;
    ``queued``: those not started for no such reason. ``timers``, ``events``: what
    the orchestration waits for. ``children``: its sub-orchestrations. ``drained``:
    nothing of it, its live sub-orchestrations included, is running: once a paused
    instance is drained, nothing of it runs until it is resumed. ``warnings``: names
    no live worker serves.
    """

    instance_id: str
    status: Status
    running: tuple[RunningActivity, ...]
    waiting_results: tuple[WaitingResult, ...]
    held: tuple[QueuedActivity, ...]
    queued: tuple[QueuedActivity, ...]
    timers: tuple[PendingTimer, ...]
    events: tuple[AwaitedEvent, ...]
    children: tuple[ChildWork, ...]
    drained: bool
    #: What may keep it waiting forever: its orchestrator, or an activity it waits
    #: for, that no live worker serves (``no live worker serves orchestrator
    #: 'chekout' (known: checkout, ...)``).
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        return {
            "instance_id": self.instance_id,
            "status": self.status.value,
            "drained": self.drained,
            "warnings": list(self.warnings),
            "running": [a.to_json() for a in self.running],
            "waiting_results": [r.to_json() for r in self.waiting_results],
            "held": [a.to_json() for a in self.held],
            "queued": [a.to_json() for a in self.queued],
            "timers": [t.to_json() for t in self.timers],
            "events": [e.to_json() for e in self.events],
            "children": [c.to_json() for c in self.children],
        }


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A live worker, as its last heartbeat described it. ``kind`` is ``"tenuto"`` (a
    :class:`tenuto.Worker`) or ``"sdk"`` (a Durable Task SDK worker connected over gRPC,
    listed under the gRPC server's host and process). ``orchestrators`` and
    ``activities`` are the names it serves (``None``: any name)."""

    id: str
    kind: str
    host: str
    pid: int
    started_at: datetime
    last_seen: datetime
    orchestrators: tuple[str, ...] | None
    activities: tuple[str, ...] | None
    #: Activities it was running at its last heartbeat.
    running: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "orchestrators": None if self.orchestrators is None else list(self.orchestrators),
            "activities": None if self.activities is None else list(self.activities),
            "running": self.running,
        }
