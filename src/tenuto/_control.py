"""State changes made from outside an orchestration: start, events, pause, resume,
terminate, purge.

Each function runs inside the caller's transaction, so a change and everything it
implies (history records, held activities, children, the parent's notification) commit
together. This is where the pause rules of the product contract are enforced:

* pausing sets PAUSED, holds every activity of the instance that is not running (the
  claim query skips held rows, so no worker can start one after the commit), and clears
  ``next_due`` so no orchestration step, timer or event is processed;
* running work is left alone; its result waits in the inbox;
* resuming releases the held activities and recomputes ``next_due`` from the inbox,
  so due timers and queued events are handled at once, in order;
* children are paused with the parent (``source="parent"``) and resumed with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from . import history as h
from ._json import dumps
from ._signals import DONE
from .errors import InstanceExists, InstanceFinished, InstanceNotFinished, InstanceNotFound
from .status import PAUSABLE, Failure, Status
from .store.base import InstanceRow, NewMessage, Tx
from .tracking import track

_LIVE = (Status.PENDING, Status.RUNNING, Status.PAUSED)
TERMINAL = (Status.COMPLETED, Status.FAILED, Status.TERMINATED)


def new_execution_id() -> str:
    return uuid.uuid4().hex


def start(
    tx: Tx,
    *,
    name: str,
    input_json: str,
    instance_id: str,
    start_at: float | None,
    now: float,
) -> None:
    """Create a PENDING instance that runs at ``start_at`` (or now)."""
    row = InstanceRow(
        instance_id=instance_id,
        name=name,
        status=Status.PENDING,
        execution_id=new_execution_id(),
        input=input_json,
        created_at=now,
        updated_at=now,
        start_at=start_at,
        next_due=now if start_at is None else start_at,
    )
    if not tx.insert_instance(row):
        raise InstanceExists(instance_id)
    tx.wake()
    tx.after_commit(lambda: track("started", instance_id, name=name))


def _lock_one(tx: Tx, instance_id: str) -> InstanceRow:
    rows = tx.lock_instances([instance_id])
    if not rows:
        raise InstanceNotFound(instance_id)
    return rows[0]


def raise_event(tx: Tx, instance_id: str, name: str, data: Any, now: float) -> None:
    """Queue an external event; a paused instance gets it after resume."""
    row = _lock_one(tx, instance_id)
    if row.status.is_terminal:
        raise InstanceFinished(instance_id, row.status, "raise an event to")
    event = h.Event(h.EVENT_RAISED, now, {"name": name, "data": data})
    tx.add_messages([NewMessage(instance_id, None, event, now)])
    tx.set_due([instance_id], now)
    tx.wake()
    tx.after_commit(lambda: track("event_raised", instance_id, event_name=name))


def _live_rows(tx: Tx, ids: Sequence[str], operation: str, strict: bool) -> list[InstanceRow]:
    """Lock ``ids``; with ``strict`` (a call naming one instance), report missing or
    finished instances as errors, otherwise skip them."""
    rows = tx.lock_instances(ids)
    if strict:
        found = {r.instance_id for r in rows}
        for iid in ids:
            if iid not in found:
                raise InstanceNotFound(iid)
        for r in rows:
            if r.status.is_terminal:
                raise InstanceFinished(r.instance_id, r.status, operation)
    return [r for r in rows if not r.status.is_terminal]


def pause(
    tx: Tx,
    ids: Sequence[str],
    *,
    reason: str | None,
    by: str | None,
    resume_at: float | None,
    now: float,
    source: str = "client",
    strict: bool = False,
) -> list[str]:
    """Pause the PENDING and RUNNING instances among ``ids``; returns those changed."""
    rows = _live_rows(tx, ids, "pause", strict)
    targets = [r.instance_id for r in rows if r.status in PAUSABLE]
    if not targets:
        return []
    tx.update_instances(
        targets,
        {
            "status": Status.PAUSED,
            "pause_reason": reason,
            "pause_by": by,
            "pause_since": now,
            "pause_resume_at": resume_at,
            "pause_source": source,
            "next_due": None,
            "updated_at": now,
            # A step in progress is discarded when it tries to commit; freeing its lease
            # lets the instance run at once after resume, even if that worker died.
            "lease": None,
            "lease_until": None,
        },
    )
    tx.hold_activities(targets)
    tx.annotate(
        targets,
        h.Event(
            h.EXECUTION_SUSPENDED,
            now,
            {"reason": reason, "by": by, "source": source, "resume_at": resume_at},
        ),
    )
    children = tx.children(targets, PAUSABLE)
    if children:
        pause(tx, children, reason=reason, by=by, resume_at=None, now=now, source="parent")

    def log() -> None:
        for iid in targets:
            track("paused", iid, reason=reason, by=by, source=source, resume_at=resume_at)

    tx.after_commit(log)
    return targets


def resume(
    tx: Tx,
    ids: Sequence[str],
    *,
    reason: str | None,
    by: str | None,
    now: float,
    strict: bool = False,
    only_source: str | None = None,
) -> list[str]:
    """Resume the PAUSED instances among ``ids`` (those paused by ``only_source``, if
    given); returns those changed."""
    rows = _live_rows(tx, ids, "resume", strict)
    rows = [
        r
        for r in rows
        if r.status is Status.PAUSED and (only_source is None or r.pause_source == only_source)
    ]
    if not rows:
        return []
    targets = [r.instance_id for r in rows]
    cleared = {
        "pause_reason": None,
        "pause_by": None,
        "pause_since": None,
        "pause_resume_at": None,
        "pause_source": None,
        "updated_at": now,
    }
    started = [r.instance_id for r in rows if r.started_at is not None]
    waiting = [r.instance_id for r in rows if r.started_at is None]
    if started:
        tx.update_instances(started, {**cleared, "status": Status.RUNNING})
    if waiting:
        tx.update_instances(waiting, {**cleared, "status": Status.PENDING})
    tx.annotate(targets, h.Event(h.EXECUTION_RESUMED, now, {"reason": reason, "by": by}))
    tx.release_activities(targets)
    tx.recompute_due(targets, now)
    # A self-paused orchestration has a step to take: its ctx.pause() task completes.
    self_paused = [r.instance_id for r in rows if r.pause_source == "orchestration"]
    if self_paused:
        tx.set_due(self_paused, now)
    children = tx.children(targets, (Status.PAUSED,))
    if children:
        resume(tx, children, reason=reason, by=by, now=now, only_source="parent")

    def log() -> None:
        for iid in targets:
            track("resumed", iid, reason=reason, by=by)

    tx.after_commit(log)
    tx.wake()
    return targets


def terminate(
    tx: Tx,
    ids: Sequence[str],
    *,
    reason: str | None,
    by: str | None,
    now: float,
    strict: bool = False,
    recursive: bool = True,
) -> list[str]:
    """End live instances TERMINATED (with their sub-orchestrations when ``recursive``)."""
    rows = _live_rows(tx, ids, "terminate", strict)
    if not rows:
        return []
    targets = [r.instance_id for r in rows]
    message = reason or "terminated"
    failure = Failure("tenuto.Terminated", f"{message} (by {by})" if by else message)
    tx.update_instances(
        targets,
        {
            "status": Status.TERMINATED,
            "failure": dumps(failure.to_json()),
            "completed_at": now,
            "updated_at": now,
            "next_due": None,
            "pause_reason": None,
            "pause_by": None,
            "pause_since": None,
            "pause_resume_at": None,
            "pause_source": None,
            "lease": None,
            "lease_until": None,
        },
    )
    tx.annotate(targets, h.Event(h.EXECUTION_TERMINATED, now, {"reason": reason, "by": by}))
    tx.delete_pending_work(targets)
    gone = set(targets)
    if recursive:
        children = tx.children(targets, _LIVE)
        if children:
            gone.update(terminate(tx, children, reason="parent terminated", by=by, now=now))
    notify_parents(
        tx,
        [r for r in rows if r.parent_instance_id and r.parent_instance_id not in gone],
        h.SUB_FAILED,
        {"failure": failure.to_json()},
        now,
    )

    def log() -> None:
        for iid in targets:
            track("terminated", iid, reason=reason, by=by)

    tx.after_commit(log)
    tx.wake(DONE)
    return targets


def notify_parents(
    tx: Tx, children: Sequence[InstanceRow], kind: str, fields: dict[str, Any], now: float
) -> None:
    """Tell the parents of finished sub-orchestrations how they ended."""
    if not children:
        return
    messages = [
        NewMessage(
            c.parent_instance_id,  # type: ignore[arg-type]
            c.parent_execution_id,
            h.Event(kind, now, {"task_id": c.parent_task_id, **fields}),
            now,
        )
        for c in children
    ]
    tx.add_messages(messages)
    tx.set_due([c.parent_instance_id for c in children], now)  # type: ignore[misc]


def purge(tx: Tx, ids: Sequence[str], *, strict: bool = False) -> int:
    """Delete finished instances and everything stored about them."""
    rows = tx.lock_instances(ids)
    if strict:
        if not rows:
            raise InstanceNotFound(ids[0])
        for r in rows:
            if not r.status.is_terminal:
                raise InstanceNotFinished(r.instance_id, r.status)
    targets = [r.instance_id for r in rows if r.status.is_terminal]
    count = tx.delete_instances(targets) if targets else 0

    def log() -> None:
        for iid in targets:
            track("purged", iid)

    tx.after_commit(log)
    return count
