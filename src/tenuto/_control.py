"""State changes made from outside an orchestration: start (replacing an instance, or
restarting one), events, pause, resume, terminate, rewind, purge.

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

import time
import uuid
from collections.abc import Sequence
from typing import Any

from . import _failures
from . import history as h
from ._json import Raw, dumps, loads
from ._wakeups import DONE, ENTITIES
from .errors import (
    InstanceExists,
    InstanceFinished,
    InstanceNotFinished,
    InstanceNotFound,
    ValidationError,
)
from .status import LIVE, PAUSABLE, TERMINAL, Failure, Status
from .store.base import HistoryRow, InstanceRow, NewMessage, Selection, StandingPauseRow, Tx
from .store.outbox import TrackingRecord
from .tracking import track

#: Kinds of standing pauses (and, for an instance, ``pause.source`` of a standing pause).
ORCHESTRATOR = "orchestrator"
ACTIVITY = "activity"
ENTITY = "entity"
#: ``pause.source`` of an explicit pause, and of a pause that came from the parent.
CLIENT = "client"
PARENT = "parent"
#: ``pause.source`` of a pause by tenuto itself: the code no longer matches the history
#: (see ``App(on_nondeterminism=...)``), or a call failed its last attempt under
#: ``RetryPolicy(on_exhausted="pause")`` (see :mod:`tenuto._failures`).
NONDETERMINISM = "nondeterminism"
FAILURE = _failures.FAILURE


def new_execution_id() -> str:
    return uuid.uuid4().hex


def track_each(tx: Tx, event: str, ids: Sequence[str], **fields: Any) -> None:
    """Write one tracking record per instance to the outbox, with the transaction (the
    drainer emits it), and log it here once the transaction has committed."""
    if not ids:
        return
    ts = time.time()
    for iid in ids:
        tx.track(TrackingRecord(event, iid, ts, fields))

    def log() -> None:
        for iid in ids:
            track(event, iid, **fields)

    tx.after_commit(log)


def start(
    tx: Tx,
    *,
    name: str,
    inputs: Sequence[tuple[str, str]],
    start_at: float | None,
    now: float,
    version: str | None = None,
    tags: dict[str, str] | None = None,
    trace_parent: str | None = None,
) -> None:
    """Create instances of orchestrator ``name``, one per ``(instance_id, input_json)``:
    PENDING until ``start_at`` (or now), or PAUSED if the orchestrator is under a
    standing pause (the start is accepted and held). All or none: a taken id raises
    :class:`InstanceExists` and nothing is written. ``version`` and ``tags`` (validated
    by the caller) are stored with each instance, and so is ``trace_parent`` (the W3C
    traceparent of the span that started them, see :mod:`tenuto.tracing`)."""
    tags_json = dumps(tags) if tags else None
    rows = [
        InstanceRow(
            instance_id=instance_id,
            name=name,
            status=Status.PENDING,
            execution_id=new_execution_id(),
            input=input_json,
            created_at=now,
            updated_at=now,
            start_at=start_at,
            next_due=now if start_at is None else start_at,
            version=version,
            tags=tags_json,
            trace_parent=trace_parent,
        )
        for instance_id, input_json in inputs
    ]
    held = hold_if_type_paused(tx, rows, now)
    for row, inserted in zip(rows, tx.insert_instances(rows), strict=True):
        if not inserted:
            raise InstanceExists(row.instance_id)
    if held:
        record_type_holds(tx, held, now)
    if len(held) < len(rows):
        tx.wake()
    track_each(tx, "started", [r.instance_id for r in rows], name=name)


def hold_if_type_paused(
    tx: Tx, rows: Sequence[InstanceRow], now: float
) -> list[tuple[InstanceRow, StandingPauseRow]]:
    """Turn new instances of orchestrators under a standing pause into PAUSED ones
    (before they are inserted); returns those, with their pause."""
    names = sorted({r.name for r in rows})
    tx.lock_names(ORCHESTRATOR, names, exclusive=False)
    pauses = {p.name: p for p in tx.standing_pauses(ORCHESTRATOR, names)}
    held = []
    for row in rows:
        sp = pauses.get(row.name)
        if sp is not None:
            row.status = Status.PAUSED
            row.next_due = None
            row.pause_reason, row.pause_by = sp.reason, sp.by
            row.pause_since, row.pause_source = now, ORCHESTRATOR
            held.append((row, sp))
    return held


def record_type_holds(
    tx: Tx, held: Sequence[tuple[InstanceRow, StandingPauseRow]], now: float
) -> None:
    """History records and tracking for instances created PAUSED by a standing pause."""
    for row, sp in held:
        tx.annotate([row.instance_id], _suspended(sp.reason, sp.by, ORCHESTRATOR, None, now))
        track_each(tx, "paused", [row.instance_id], reason=sp.reason, by=sp.by, source=ORCHESTRATOR)


def _suspended(
    reason: str | None, by: str | None, source: str, resume_at: float | None, now: float
) -> h.Event:
    return h.Event(
        h.EXECUTION_SUSPENDED,
        now,
        {"reason": reason, "by": by, "source": source, "resume_at": resume_at},
    )


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
    track_each(tx, "event_raised", [instance_id], event_name=name)


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
    source: str = CLIENT,
    strict: bool = False,
) -> list[str]:
    """Pause the PENDING and RUNNING instances among ``ids``; with ``resume_at``, also set
    the scheduled resume of those already PAUSED. Returns those changed.

    An explicit pause (``source="client"``) of an instance that its parent or a
    standing pause holds makes the pause its own: it then stays paused until resumed
    itself, whatever happens to the other pause (see :func:`resume`)."""
    rows = _live_rows(tx, ids, "pause", strict)
    taken = (
        _take_over(tx, rows, reason=reason, by=by, resume_at=resume_at, now=now)
        if source == CLIENT
        else []
    )
    rescheduled = _reschedule(
        tx, [r for r in rows if r.instance_id not in taken], reason, by, source, resume_at, now
    )
    rescheduled += taken
    targets = [r.instance_id for r in rows if r.status in PAUSABLE]
    if not targets:
        return rescheduled
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
            # Claims that a pause cut short are not steps that crashed their worker.
            "claims": 0,
        },
    )
    tx.hold_activities(targets)
    tx.annotate(targets, _suspended(reason, by, source, resume_at, now))
    # Every live child: which of them to pause is decided once each is locked (a child
    # whose status a concurrent transaction is changing is read as that one left it).
    children = tx.children(targets, LIVE)
    if children:
        pause(tx, children, reason=reason, by=by, resume_at=None, now=now, source=PARENT)

    track_each(tx, "paused", targets, reason=reason, by=by, source=source, resume_at=resume_at)
    return targets + rescheduled


def _reschedule(
    tx: Tx,
    rows: Sequence[InstanceRow],
    reason: str | None,
    by: str | None,
    source: str,
    resume_at: float | None,
    now: float,
) -> list[str]:
    """Set the scheduled resume of the PAUSED instances among ``rows`` to ``resume_at``
    (a pause with a resume time, on an instance that is paused already); returns those
    whose time changed. The pause keeps its reason, actor and source; the change is
    recorded (an ``ExecutionSuspended`` event with ``rescheduled: true``, by ``source``)
    and tracked."""
    if resume_at is None:
        return []
    ids = [
        r.instance_id for r in rows if r.status is Status.PAUSED and r.pause_resume_at != resume_at
    ]
    if not ids:
        return []
    tx.update_instances(ids, {"pause_resume_at": resume_at, "updated_at": now})
    event = _suspended(reason, by, source, resume_at, now)
    event.data["rescheduled"] = True
    tx.annotate(ids, event)
    track_each(tx, "pause_rescheduled", ids, reason=reason, by=by, resume_at=resume_at)
    return ids


def resume(
    tx: Tx,
    ids: Sequence[str],
    *,
    reason: str | None,
    by: str | None,
    now: float,
    strict: bool = False,
    only_source: str | None = None,
    hand_over: bool = False,
    deliver_failure: bool = False,
) -> list[str]:
    """Resume the PAUSED instances among ``ids`` (those paused by ``only_source``, if
    given); returns those changed.

    An instance paused by a call that failed its last attempt runs the call again, or,
    with ``deliver_failure``, gets the failure in its code (see :mod:`tenuto._failures`).

    ``hand_over`` is for a pause that ends by itself (its parent resumed, its standing
    pause ended, its scheduled resume came): an instance that another pause still holds
    stays PAUSED, and that pause becomes its own (:func:`_hand_over`). An explicit
    resume of an instance resumes it, whatever paused it."""
    rows = _live_rows(tx, ids, "resume", strict)
    rows = [
        r
        for r in rows
        if r.status is Status.PAUSED and (only_source is None or r.pause_source == only_source)
    ]
    if hand_over:
        rows = _hand_over(tx, rows, now)
    if not rows:
        return []
    if deliver_failure:
        _check_failure_pauses(rows)
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
    failed = [r for r in rows if r.pause_source == FAILURE]
    if failed and not deliver_failure:
        children = _failures.run_again(tx, failed, now)
        for child in tx.lock_instances(children) if children else []:
            if child.status is Status.FAILED:
                _rewind(tx, child, reason=reason, by=by, now=now)
    resumed: dict[str, Any] = {"reason": reason, "by": by}
    if failed and deliver_failure:
        resumed["deliver_failure"] = True
    tx.annotate(targets, h.Event(h.EXECUTION_RESUMED, now, resumed))
    tx.release_activities(targets)
    tx.recompute_due(targets, now)
    # A self-paused orchestration has a step to take: its ctx.pause() task completes;
    # one that its code's mismatch paused replays again (with the code the worker has).
    self_paused = [
        r.instance_id for r in rows if r.pause_source in ("orchestration", NONDETERMINISM)
    ]
    if self_paused:
        tx.set_due(self_paused, now)
    children = tx.children(targets, LIVE)  # decided once locked, as in pause()
    if children:
        resume(tx, children, reason=reason, by=by, now=now, only_source=PARENT, hand_over=True)

    track_each(tx, "resumed", targets, reason=reason, by=by)
    tx.wake()
    return targets


def _check_failure_pauses(rows: Sequence[InstanceRow]) -> None:
    """``deliver_failure`` applies to instances paused by a failed call; for another pause
    it is a mistake, refused before anything changes."""
    for r in rows:
        if r.pause_source != FAILURE:
            raise ValidationError(
                f"instance {r.instance_id!r} was not paused by a failed call (its pause "
                f"came from {r.pause_source!r}): there is no failure to deliver; resume it "
                "without deliver_failure"
            )


def _take_over(
    tx: Tx,
    rows: Sequence[InstanceRow],
    *,
    reason: str | None,
    by: str | None,
    resume_at: float | None,
    now: float,
) -> list[str]:
    """Make an explicit pause the owner of instances paused by their parent or by a
    standing pause (recorded like a pause), so that only their own resume ends it;
    returns their ids."""
    ids = [
        r.instance_id
        for r in rows
        if r.status is Status.PAUSED and r.pause_source in (PARENT, ORCHESTRATOR)
    ]
    if ids:
        _set_pause(tx, ids, reason, by, CLIENT, resume_at, now)
    return ids


def _hand_over(tx: Tx, rows: Sequence[InstanceRow], now: float) -> list[InstanceRow]:
    """Of ``rows`` (instances whose pause ends by itself), return those to resume; the
    others stay PAUSED, their pause now the one that still holds them: their parent's,
    if it is PAUSED, else the standing pause of their orchestrator.

    Read, not locked: a parent resumed concurrently locks this child after this
    transaction and finds it paused by its parent; a standing pause made concurrently
    finds it RUNNING after this transaction and pauses it."""
    parents = sorted({r.parent_instance_id for r in rows if r.parent_instance_id})
    paused_parents = {
        p.instance_id: p
        for p in (tx.query(Selection(ids=tuple(parents)), len(parents), None) if parents else [])
        if p.status is Status.PAUSED
    }
    standing = {
        sp.name: sp for sp in tx.standing_pauses(ORCHESTRATOR, sorted({r.name for r in rows}))
    }
    free = []
    for r in rows:
        parent = paused_parents.get(r.parent_instance_id or "")
        sp = standing.get(r.name)
        if parent is not None:
            if r.pause_source != PARENT:
                _set_pause(
                    tx, [r.instance_id], parent.pause_reason, parent.pause_by, PARENT, None, now
                )
        elif sp is not None:
            if r.pause_source != ORCHESTRATOR:
                _set_pause(tx, [r.instance_id], sp.reason, sp.by, ORCHESTRATOR, None, now)
        else:
            free.append(r)
    return free


def _set_pause(
    tx: Tx,
    ids: Sequence[str],
    reason: str | None,
    by: str | None,
    source: str,
    resume_at: float | None,
    now: float,
) -> None:
    """Record that another pause now holds PAUSED instances ``ids``."""
    tx.update_instances(
        ids,
        {
            "pause_reason": reason,
            "pause_by": by,
            "pause_since": now,
            "pause_resume_at": resume_at,
            "pause_source": source,
            "updated_at": now,
        },
    )
    tx.annotate(ids, _suspended(reason, by, source, resume_at, now))
    track_each(tx, "paused", ids, reason=reason, by=by, source=source, resume_at=resume_at)


def terminate(
    tx: Tx,
    ids: Sequence[str],
    *,
    reason: str | None,
    by: str | None,
    now: float,
    strict: bool = False,
    recursive: bool = True,
    output: str | None = None,
) -> list[str]:
    """End live instances TERMINATED (with their sub-orchestrations when ``recursive``).

    ``output``: JSON text to store as the output of ``ids`` (the Durable Task protocol's
    terminate carries one); their sub-orchestrations end without one."""
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
            "output": output,
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
    if tx.release_entity_locks(targets):
        tx.wake(ENTITIES)
    gone = set(targets)
    if recursive:
        children = tx.children(targets, LIVE)
        if children:
            gone.update(terminate(tx, children, reason="parent terminated", by=by, now=now))
    notify_parents(
        tx,
        [r for r in rows if r.parent_instance_id and r.parent_instance_id not in gone],
        h.SUB_FAILED,
        {"failure": failure.to_json()},
        now,
    )

    track_each(tx, "terminated", targets, reason=reason, by=by)
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


def purge(
    tx: Tx,
    ids: Sequence[str],
    *,
    strict: bool = False,
    recursive: bool = False,
    by: str | None = None,
) -> int:
    """Delete finished instances and everything stored about them; with ``recursive``,
    their finished sub-orchestrations too, at every depth. Returns how many went.
    ``by``: who purged them, for the tracking log (``"retention"`` for a retention
    policy)."""
    rows = tx.lock_instances(ids)
    if strict:
        if not rows:
            raise InstanceNotFound(ids[0])
        for r in rows:
            if not r.status.is_terminal:
                raise InstanceNotFinished(r.instance_id, r.status)
    targets = [r.instance_id for r in rows if r.status.is_terminal]
    if recursive and targets:
        targets += _finished_descendants(tx, targets)
    count = tx.delete_instances(targets) if targets else 0

    track_each(tx, "purged", targets, by=by)
    return count


def _finished_descendants(tx: Tx, ids: Sequence[str]) -> list[str]:
    """The finished sub-orchestrations of ``ids``, theirs, and so on, locked."""
    seen = set(ids)
    found: list[str] = []
    level = list(ids)
    while level:
        level = [c for c in tx.children(level, TERMINAL) if c not in seen]
        seen.update(level)
        found += level
    if not found:
        return []
    return [r.instance_id for r in tx.lock_instances(found) if r.status.is_terminal]


def replace(
    tx: Tx, ids: Sequence[str], reuse: Sequence[Status], *, by: str | None, now: float
) -> None:
    """Make way for new instances with ``ids``: an existing one whose status is in
    ``reuse`` is terminated (if it is live) and purged, so that :func:`start` can take
    its id; one in another status stays, and :func:`start` then raises
    :class:`InstanceExists`."""
    if not reuse:
        return
    rows = [r for r in tx.lock_instances(ids) if r.status in reuse]
    live = [r.instance_id for r in rows if not r.status.is_terminal]
    if live:
        terminate(tx, live, reason="replaced by a new start", by=by, now=now)
    if rows:
        purge(tx, [r.instance_id for r in rows])


def restart(
    tx: Tx,
    instance_id: str,
    new_id: str,
    *,
    now: float,
    reason: str | None = None,
    by: str | None = None,
) -> None:
    """Start a finished instance again, as ``new_id`` (which may be its own id: the old
    instance is then purged first), with its original input, version and tags; its
    history starts with the restart (``ExecutionRestarted``, with ``reason`` and ``by``).
    :class:`InstanceNotFinished` if it is live."""
    row = _lock_one(tx, instance_id)
    if not row.status.is_terminal:
        raise InstanceNotFinished(instance_id, row.status)
    if new_id == instance_id:
        purge(tx, [instance_id])
    start(
        tx,
        name=row.name,
        inputs=[(new_id, row.input)],  # type: ignore[list-item]
        start_at=None,
        now=now,
        version=row.version,
        tags=None if row.tags is None else loads(row.tags),
    )
    restarted = {"restarted_from": instance_id, "reason": reason, "by": by}
    tx.annotate([new_id], h.Event(h.EXECUTION_RESTARTED, now, restarted))
    track_each(tx, "restarted", [new_id], **restarted)


def rewind(tx: Tx, instance_id: str, *, reason: str | None, by: str | None, now: float) -> None:
    """Run a FAILED instance again from before its failure, and let a worker replay it.

    What the failure ended is forgotten: the failure itself, the failed activity calls
    and sub-orchestrations, and the work still under way when it came (activities and
    timers whose rows went with the failure). Replayed, the code calls them again.
    What succeeded keeps its result. A failed sub-orchestration is rewound with it, a
    terminated one runs again, and a finished one whose result the failure dropped
    hands it over again. The history keeps the forgotten events, each marked
    ``Rewound`` in its place (no replay sees them), and records the rewind
    (``ExecutionRewound``, with ``reason`` and ``by``): a worker that holds the
    instance in memory from before sees the mark and replays the history.

    :class:`InstanceFinished` if the instance ended otherwise (completed or
    terminated), :class:`InstanceNotFinished` if it is live. As in the Durable Task
    SDKs, an activity that an SDK worker called with a retry policy cannot be rewound
    (its retry timers stay in the history)."""
    row = _lock_one(tx, instance_id)
    if row.status is not Status.FAILED:
        if row.status.is_terminal:
            raise InstanceFinished(instance_id, row.status, "rewind (it did not fail)")
        raise InstanceNotFinished(instance_id, row.status)
    _rewind(tx, row, reason=reason, by=by, now=now)


def _rewind(tx: Tx, row: InstanceRow, *, reason: str | None, by: str | None, now: float) -> None:
    instance_id = row.instance_id
    events = tx.load_history(instance_id)
    done = {e.data.get("task_id") for e in events if e.type in _SUCCESSES}
    children = _unsettled_children(tx, row, events, done)
    history: list[h.Event] = []
    for e in events:
        if _forgotten(e, done, children):
            e = h.Event(h.REWOUND, now, {"event": e.type, **e.data})
        history.append(e)
    history.append(h.Event(h.EXECUTION_REWOUND, now, {"reason": reason, "by": by}))
    tx.delete_history(instance_id)
    tx.append_history(HistoryRow(instance_id, i, e) for i, e in enumerate(history))
    tx.update_instance(
        instance_id,
        {
            "status": Status.RUNNING,
            "failure": None,
            "output": None,
            "completed_at": None,
            "history_len": len(history),
            "updated_at": now,
            "next_due": now,
            "lease": None,
            "lease_until": None,
            "claims": 0,
        },
    )
    for child in children.values():
        if child.status is Status.FAILED:
            _rewind(tx, child, reason=reason, by=by, now=now)
    finished = [c for c in children.values() if c.status is Status.COMPLETED]
    for child in finished:
        notify_parents(tx, [child], h.SUB_COMPLETED, {"result": _raw(child.output)}, now)
    tx.wake()
    track_each(tx, "rewound", [instance_id], reason=reason, by=by)


#: Events that settle a task: its result stays, and so does the call.
_SUCCESSES = frozenset({h.TASK_COMPLETED, h.TIMER_FIRED, h.SUB_COMPLETED})


def _unsettled_children(
    tx: Tx, row: InstanceRow, events: Sequence[h.Event], done: set[Any]
) -> dict[Any, InstanceRow]:
    """The sub-orchestrations that ``row``'s history started and holds no result of, by
    task id, locked (those that still exist and are its own)."""
    ids = {
        e.data.get("task_id"): str(e.data.get("instance_id"))
        for e in events
        if e.type == h.SUB_CREATED and e.data.get("task_id") not in done
    }
    found = {r.instance_id: r for r in tx.lock_instances(sorted(set(ids.values())))} if ids else {}
    return {
        task_id: child
        for task_id, iid in ids.items()
        if (child := found.get(iid)) is not None and child.parent_instance_id == row.instance_id
    }


def _forgotten(event: h.Event, done: set[Any], children: dict[Any, InstanceRow]) -> bool:
    """Whether a rewind forgets ``event``: the failure, a failed result, or the call of
    a task that did not succeed and will not succeed by itself (an activity or timer
    whose row the failure deleted, a sub-orchestration that is gone or was
    terminated); a failed or live sub-orchestration keeps its call (it is rewound, or
    its result comes)."""
    t, task_id = event.type, event.data.get("task_id")
    if t in (h.TASK_FAILED, h.SUB_FAILED, h.EXECUTION_COMPLETED):
        return True
    if t in (h.TASK_SCHEDULED, h.TIMER_CREATED):
        return task_id not in done
    if t == h.SUB_CREATED and task_id not in done:
        child = children.get(task_id)
        return child is None or child.status is Status.TERMINATED
    return False


def _raw(text: str | None) -> Any:
    """A stored JSON value as its own text (an SDK gets it back byte for byte)."""
    return None if text is None else Raw(text)


# -- standing pauses ------------------------------------------------------------------


def pause_type(
    tx: Tx,
    kind: str,
    name: str,
    *,
    reason: str | None,
    by: str | None,
    resume_at: float | None,
    now: float,
) -> bool:
    """Pause every instance of orchestrator ``name`` (running ones, and any started while
    the pause stands), or hold every execution of activity ``name``, wherever it is.
    ``False`` if such a pause stands already (nothing changes)."""
    tx.lock_names(kind, [name], exclusive=True)
    if not tx.insert_standing_pause(StandingPauseRow(kind, name, reason, by, now, resume_at)):
        return False
    if kind == ORCHESTRATOR:
        live = tx.select_ids(Selection(statuses=PAUSABLE, name=name))
        pause(tx, live, reason=reason, by=by, resume_at=None, now=now, source=ORCHESTRATOR)
    elif kind == ENTITY:
        pass  # entity claims skip every entity of a name under a standing pause
    elif kind == ACTIVITY:
        waiting = tx.hold_activity_type(name)
        if waiting:
            tx.annotate(
                waiting,
                h.Event(h.ACTIVITY_HELD, now, {"activity": name, "reason": reason, "by": by}),
            )
        track_each(tx, "activity_held", waiting, activity=name, reason=reason, by=by)
    track_each(tx, f"{kind}_paused", [name], reason=reason, by=by, resume_at=resume_at)
    return True


def resume_type(
    tx: Tx, kind: str, name: str, *, reason: str | None, by: str | None, now: float
) -> bool:
    """End a standing pause: resume exactly the instances it paused, or release the held
    executions (in the order they were scheduled). ``False`` if none stood."""
    tx.lock_names(kind, [name], exclusive=True)
    if tx.delete_standing_pause(kind, name) is None:
        return False
    if kind == ORCHESTRATOR:
        paused = tx.select_ids(Selection(statuses=(Status.PAUSED,), name=name))
        resume(tx, paused, reason=reason, by=by, now=now, only_source=ORCHESTRATOR, hand_over=True)
    elif kind == ENTITY:
        tx.wake(ENTITIES)  # their queued operations are due again
    elif kind == ACTIVITY:
        released = tx.release_activity_type(name)
        if released:
            tx.annotate(
                released,
                h.Event(h.ACTIVITY_RELEASED, now, {"activity": name, "reason": reason, "by": by}),
            )
            tx.wake()
        track_each(tx, "activity_released", released, activity=name, by=by)
    track_each(tx, f"{kind}_resumed", [name], reason=reason, by=by)
    return True
