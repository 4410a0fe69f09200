"""Pending work and workers, built from the store (the core of
:meth:`tenuto.Client.pending_work` and :meth:`tenuto.Client.workers`; entry points only
render what these return)."""

from __future__ import annotations

from collections.abc import Sequence

from . import history as h
from ._control import ACTIVITY, ORCHESTRATOR
from ._json import loads
from ._served import unserved
from .status import LIVE, from_timestamp
from .store.base import InstanceRow, Reader, WorkerRow, WorkRow
from .work import (
    AwaitedEvent,
    ChildWork,
    PendingTimer,
    PendingWork,
    QueuedActivity,
    RunningActivity,
    WaitingResult,
    WorkerInfo,
)

#: Results a step hands to the orchestration code, by message type: whether it is a success.
_RESULTS = {
    h.TASK_COMPLETED: True,
    h.TASK_FAILED: False,
    h.SUB_COMPLETED: True,
    h.SUB_FAILED: False,
}
#: How deep sub-orchestrations are followed to tell whether anything of them runs.
_MAX_DEPTH = 32


def worker_of(lease: str) -> str:
    """The worker id in an activity's lease (a worker leases as ``"<its id>:<n>"``)."""
    return lease.rsplit(":", 1)[0]


def is_running(row: WorkRow, now: float) -> bool:
    """Whether an activity execution runs now: leased, the lease not run out (one that
    ran out belongs to a gone worker, and is queued for another)."""
    return row.lease is not None and row.visible_at >= now


def pending_work(r: Reader, instance_id: str, now: float) -> PendingWork | None:
    """What ``instance_id`` has in flight (``None``: no such instance)."""
    row = r.get_instance(instance_id)
    if row is None:
        return None
    work = r.work_rows([instance_id])
    running = tuple(
        RunningActivity(
            w.name,
            w.task_id,
            w.attempt,
            from_timestamp(w.started_at),
            worker_of(w.lease) if w.lease else None,
        )
        for w in work
        if is_running(w, now)
    )
    held: list[QueuedActivity] = []
    queued: list[QueuedActivity] = []
    for w in work:
        if is_running(w, now):
            continue
        by = "standing pause" if w.type_held else "pause" if w.held else None
        start_at = from_timestamp(w.visible_at) if w.lease is None and w.visible_at > now else None
        (held if by else queued).append(QueuedActivity(w.name, w.task_id, w.attempt, by, start_at))
    results, timers = _inbox(r, row)
    children = r.children_of([instance_id])
    busy = _busy_descendants(r, [c for c in children if c.status in LIVE], now)
    awaited = r.awaiting([instance_id]).get(instance_id)
    events = tuple(
        AwaitedEvent(e["name"], from_timestamp(e["timeout_at"]))
        for e in (loads(awaited) if awaited else [])
    )
    warnings: list[str] = []
    if row.status in LIVE:
        workers = r.workers(now)
        names = [(ORCHESTRATOR, row.name)]
        names += [(ACTIVITY, n) for n in dict.fromkeys(q.name for q in queued)]
        known = {kind: r.known_names(kind) for kind in {kind for kind, _ in names}}
        for kind, name in names:
            warning = unserved(workers, known[kind], kind, name)
            if warning is not None:
                warnings.append(warning)
    return PendingWork(
        instance_id=instance_id,
        status=row.status,
        running=running,
        waiting_results=results,
        held=tuple(held),
        queued=tuple(queued),
        timers=timers,
        events=events,
        children=tuple(
            ChildWork(c.instance_id, c.name, c.status, c.instance_id not in busy) for c in children
        ),
        drained=not running and not busy,
        warnings=tuple(warnings),
    )


def _inbox(
    r: Reader, row: InstanceRow
) -> tuple[tuple[WaitingResult, ...], tuple[PendingTimer, ...]]:
    """The results and timers waiting in the instance's inbox for its current execution."""
    messages = [
        m
        for m in r.inbox_of([row.instance_id])[row.instance_id]
        if m.execution_id == row.execution_id
    ]
    timers = tuple(
        PendingTimer(m.event.data["task_id"], from_timestamp(m.visible_at))  # type: ignore[arg-type]
        for m in messages
        if m.event.type == h.TIMER_FIRED
    )
    waiting = [m for m in messages if m.event.type in _RESULTS]
    names: dict[int, str] = {}
    if waiting:
        for event in r.load_history(row.instance_id):
            if event.type in (h.TASK_SCHEDULED, h.SUB_CREATED):
                names[event.data["task_id"]] = event.data["name"]
    results = tuple(
        WaitingResult(
            names.get(m.event.data["task_id"]),
            m.event.data["task_id"],
            from_timestamp(m.event.ts),  # type: ignore[arg-type]
            _RESULTS[m.event.type],
        )
        for m in waiting
    )
    return results, timers


def _busy_descendants(r: Reader, children: Sequence[InstanceRow], now: float) -> set[str]:
    """Ids of those of ``children`` that run something, themselves or through their own
    live sub-orchestrations (followed level by level, one read per level)."""
    level = [c.instance_id for c in children]
    roots = {iid: iid for iid in level}
    busy: set[str] = set()
    for _ in range(_MAX_DEPTH):
        if not level:
            break
        for w in r.work_rows(level):
            if is_running(w, now):
                busy.add(roots[w.instance_id])
        below = [c for c in r.children_of(level) if c.status in LIVE]
        for c in below:
            assert c.parent_instance_id is not None
            roots[c.instance_id] = roots[c.parent_instance_id]
        level = [c.instance_id for c in below if roots[c.instance_id] not in busy]
    return busy


def worker_info(row: WorkerRow) -> WorkerInfo:
    """The public form of a worker's heartbeat row."""
    return WorkerInfo(
        id=row.id,
        kind=row.kind,
        host=row.host,
        pid=row.pid,
        started_at=from_timestamp(row.started_at),  # type: ignore[arg-type]
        last_seen=from_timestamp(row.last_seen),  # type: ignore[arg-type]
        orchestrators=None if row.orchestrators is None else tuple(loads(row.orchestrators)),
        activities=None if row.activities is None else tuple(loads(row.activities)),
        running=row.running,
    )
