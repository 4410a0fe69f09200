"""The core of durable entities: running a batch of operations, writing it, and the
changes clients make (signals, pause, resume, cleaning).

A worker leases an entity (:meth:`~tenuto.store.entity_base.EntityWrites.claim_entities`),
reads the operations it may run, runs them one by one on its state
(:func:`run_batch`, outside any transaction), and writes the outcome with
:func:`write_batches` in one transaction: the new state, the operations deleted, the
callers' results, the signals and orchestrations the operations sent, if the entity
is still leased by that worker. A worker that dies mid-batch writes nothing; its lease
runs out and another worker runs the same operations again: each is applied once.

Locks: a ``lock`` operation locks the entity for its caller and forwards the request
to the next entity of the critical section (sorted ids), the last one telling the
caller. While locked, only the holder's operations run; the others wait in order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _control
from . import history as h
from ._json import dumps, loads
from ._wakeups import ENTITIES
from .app import App
from .entities import EntityContext, EntityId, EntityState, OrchestrationStarted
from .status import Failure, PauseInfo, Status, from_timestamp
from .store.base import InstanceRow, NewMessage, Reader, StandingPauseRow, Tx
from .store.entity_base import EntityOpRow, EntityRow, NewEntityOp
from .tracking import track

log = logging.getLogger("tenuto.worker")

#: The kind of standing pause that holds every entity of a name.
ENTITY = _control.ENTITY
CALL, SIGNAL, LOCK, UNLOCK = "call", "signal", "lock", "unlock"


@dataclass
class Batch:
    """What running a batch of one entity's operations decided."""

    row: EntityRow
    lease: str
    applied: list[int] = field(default_factory=list)
    state: str | None = None
    locked_by: str | None = None
    modified: bool = False
    ops: list[NewEntityOp] = field(default_factory=list)
    responses: list[NewMessage] = field(default_factory=list)
    starts: list[OrchestrationStarted] = field(default_factory=list)
    #: Orchestrations this batch locked the entity for, or forwarded a lock request of
    #: (checked live when written: a lock for one that ended is not taken).
    lockers: set[str] = field(default_factory=set)


def run_batch(
    app: App, row: EntityRow, ops: Sequence[EntityOpRow], now: float, deadline: float
) -> Batch:
    """Apply ``ops`` to the entity in order (those the lock lets run), until the
    monotonic clock passes ``deadline`` (the rest stay queued: a batch must commit
    before its lease runs out); the result to write. A failing operation leaves the
    state as it was and sends nothing."""
    assert row.lease is not None
    batch = Batch(row, row.lease, state=row.state, locked_by=row.locked_by)
    entity_id = EntityId.parse(row.entity_id)
    code = app.get_entity(row.name)
    pending = list(ops)
    while pending and time.monotonic() < deadline:
        op = next((o for o in pending if _may_run(batch.locked_by, o)), None)
        if op is None:
            break
        pending.remove(op)
        batch.applied.append(op.id)
        if op.kind == LOCK:
            _lock(batch, op, now)
        elif op.kind == UNLOCK:
            if batch.locked_by == op.caller_id:
                batch.locked_by = None
        else:
            _operation(batch, code, entity_id, op, now)
    return batch


def _may_run(locked_by: str | None, op: EntityOpRow) -> bool:
    return locked_by is None or op.caller_id == locked_by


def _lock(batch: Batch, op: EntityOpRow, now: float) -> None:
    assert op.caller_id is not None
    batch.locked_by = op.caller_id
    batch.lockers.add(op.caller_id)
    rest: list[str] = loads(op.lock_set) or []
    if rest:
        batch.ops.append(
            NewEntityOp(
                rest[0],
                LOCK,
                None,
                None,
                now,
                op.caller_id,
                op.caller_execution,
                op.caller_task,
                dumps(rest[1:]),
            )
        )
    else:
        batch.responses.append(_response(op, h.ENTITY_LOCK_GRANTED, {}, now))


def _operation(batch: Batch, code: Any, entity_id: EntityId, op: EntityOpRow, now: float) -> None:
    assert op.operation is not None
    ctx = EntityContext(entity_id, op.operation, batch.state, now)
    try:
        if code is None:
            raise LookupError(f"no entity named {entity_id.name!r} is registered in this app")
        result = code.run(ctx, loads(op.input))
        state = ctx.state_json()
        result_text = dumps(result, f"the result of operation {op.operation!r}")
    except Exception as exc:  # user code: the caller gets the error, the state stays
        if op.kind == CALL:
            failure = Failure.from_exception(exc)
            batch.responses.append(
                _response(op, h.ENTITY_FAILED, {"failure": failure.to_json()}, now)
            )
        else:
            log.warning(
                "entity %s: signalled operation %r failed: %s", entity_id, op.operation, exc
            )
        return
    if state != batch.state:
        batch.state, batch.modified = state, True
    elif ctx.touched:
        batch.modified = True
    batch.ops += [
        NewEntityOp(str(s.entity_id), SIGNAL, s.operation, s.input, max(s.at, now))
        for s in ctx.signals
    ]
    batch.starts += ctx.starts
    if op.kind == CALL:
        batch.responses.append(
            _response(op, h.ENTITY_COMPLETED, {"result": loads(result_text)}, now)
        )


def _response(op: EntityOpRow, kind: str, fields: dict[str, Any], now: float) -> NewMessage:
    assert op.caller_id is not None
    event = h.Event(kind, now, {"task_id": op.caller_task, **fields})
    return NewMessage(op.caller_id, op.caller_execution, event, now)


def write_batches(tx: Tx, batches: Sequence[Batch], now: float) -> int:
    """Write the batches whose entity is still leased by them; returns how many."""
    lockers = {c for b in batches for c in b.lockers}
    callers = {m.instance_id for b in batches for m in b.responses}
    gone: set[str] = set()
    if lockers or callers:
        # Instances before entities, as every transaction locks them (a step that ends
        # an orchestration unlocks its entities after locking it): no deadlock, and a
        # terminate that unlocks the caller's entities runs wholly before or after this.
        rows = tx.lock_instances(sorted(lockers | callers))
        live = {r.instance_id for r in rows if not r.status.is_terminal}
        gone = lockers - live
    items = []
    for b in sorted(batches, key=lambda b: b.row.entity_id):
        if b.locked_by in gone:
            b.locked_by = None
        changes: dict[str, Any] = {"locked_by": b.locked_by}
        if b.modified:
            changes.update(state=b.state, last_modified=now)
        items.append((b.row.entity_id, b.lease, changes))
    saved = tx.save_entities(items)
    done = [
        b for b, ok in zip(sorted(batches, key=lambda b: b.row.entity_id), saved, strict=True) if ok
    ]
    for b in batches:
        if b not in done:
            log.debug("entity %s: batch discarded, its lease was lost", b.row.entity_id)
    applied = [i for b in done for i in b.applied]
    if applied:
        tx.delete_entity_ops(applied)
    ops = [op for b in done for op in b.ops if not (op.kind == LOCK and op.caller_id in gone)]
    if ops:
        tx.add_entity_ops(ops, now)
    _respond(tx, [m for b in done for m in b.responses], now)
    _start(tx, [s for b in done for s in b.starts], now)
    if ops or any(b.locked_by is None and b.row.locked_by is not None for b in done):
        tx.wake(ENTITIES)
    return len(done)


def _respond(tx: Tx, responses: Sequence[NewMessage], now: float) -> None:
    """Queue the results for the callers that are live (an ended one's are moot)."""
    if not responses:
        return
    statuses = tx.statuses(sorted({m.instance_id for m in responses}))
    live = [
        m
        for m in responses
        if m.instance_id in statuses and not statuses[m.instance_id].is_terminal
    ]
    if live:
        tx.add_messages(live)
        tx.set_due(sorted({m.instance_id for m in live}), now)
        tx.wake()


def _start(tx: Tx, starts: Sequence[OrchestrationStarted], now: float) -> None:
    """Create the orchestrations the operations started (PAUSED under a standing pause
    of their orchestrator); an id already taken is left as it is."""
    if not starts:
        return
    rows = [
        InstanceRow(
            instance_id=s.instance_id,
            name=s.name,
            status=Status.PENDING,
            execution_id=_control.new_execution_id(),
            input=s.input,
            created_at=now,
            updated_at=now,
            next_due=now,
        )
        for s in starts
    ]
    held = _control.hold_if_type_paused(tx, rows, now)
    inserted = tx.insert_instances(rows)
    created = {r.instance_id for r, ok in zip(rows, inserted, strict=True) if ok}
    for row, ok in zip(rows, inserted, strict=True):
        if not ok:
            log.warning("an entity started %s, whose id is taken: left as it is", row.instance_id)
    _control.record_type_holds(tx, [(r, sp) for r, sp in held if r.instance_id in created], now)
    _control.track_each(tx, "started", sorted(created))
    tx.wake()


# -- what clients do ------------------------------------------------------------------


def signal(
    tx: Tx, entity_id: EntityId, operation: str, input_json: str, at: float, now: float
) -> None:
    """Queue a one-way operation (from a client), due at ``at``."""
    tx.add_entity_ops([NewEntityOp(str(entity_id), SIGNAL, operation, input_json, at)], now)
    tx.wake(ENTITIES)


def pause(
    tx: Tx,
    entity_id: EntityId,
    *,
    reason: str | None,
    by: str | None,
    resume_at: float | None,
    now: float,
) -> bool:
    """Hold an entity: its operations queue (in order) until it is resumed. ``False`` if
    it was paused already (with ``resume_at``: that is set, and ``True``). An entity that
    does not exist yet is created paused. A batch running already finishes."""
    eid = str(entity_id)
    tx.ensure_entities([eid], now)
    row = tx.lock_entity_rows([eid])[0]
    if row.pause_since is not None:
        if resume_at is None:
            return False
        tx.update_entities([eid], {"pause_resume_at": resume_at})
        return True
    tx.update_entities(
        [eid],
        {"pause_reason": reason, "pause_by": by, "pause_since": now, "pause_resume_at": resume_at},
    )
    tx.after_commit(lambda: track("paused", eid, reason=reason, by=by, resume_at=resume_at))
    return True


def resume(
    tx: Tx, entity_id: EntityId | str, *, reason: str | None, by: str | None, now: float
) -> bool:
    """Release a paused entity: its queued operations run, in order. ``False`` if it was
    not paused."""
    eid = str(entity_id)
    rows = tx.lock_entity_rows([eid])
    if not rows or rows[0].pause_since is None:
        return False
    tx.update_entities(
        [eid],
        {"pause_reason": None, "pause_by": None, "pause_since": None, "pause_resume_at": None},
    )
    tx.wake(ENTITIES)
    tx.after_commit(lambda: track("resumed", eid, reason=reason, by=by))
    return True


def clean(tx: Tx) -> tuple[int, int]:
    """Release the locks of orchestrations that ended or are gone, then remove the
    entities without state, lock, pause or queued operation. Returns ``(removed,
    released)``."""
    locks = tx.entity_locks()
    released = 0
    if locks:
        statuses = tx.statuses(sorted({holder for _, holder in locks}))
        orphans = [
            eid for eid, holder in locks if holder not in statuses or statuses[holder].is_terminal
        ]
        if orphans:
            tx.update_entities(orphans, {"locked_by": None})
            tx.wake(ENTITIES)
            released = len(orphans)
    return tx.delete_empty_entities(), released


def state_of(
    row: EntityRow, pending: int, standing: StandingPauseRow | None, include_state: bool = True
) -> EntityState:
    """The public view of an entity row."""
    pause = None
    if row.pause_since is not None:
        pause = PauseInfo(
            reason=row.pause_reason,
            by=row.pause_by,
            since=from_timestamp(row.pause_since),  # type: ignore[arg-type]
            resume_at=from_timestamp(row.pause_resume_at),
            source="client",
        )
    elif standing is not None:
        pause = PauseInfo(
            reason=standing.reason,
            by=standing.by,
            since=from_timestamp(standing.since),  # type: ignore[arg-type]
            resume_at=from_timestamp(standing.resume_at),
            source=ENTITY,
        )
    return EntityState(
        entity_id=EntityId.parse(row.entity_id),
        state=loads(row.state) if include_state else None,
        has_state=row.state is not None,
        last_modified=from_timestamp(row.last_modified),  # type: ignore[arg-type]
        locked_by=row.locked_by,
        pending_operations=pending,
        pause=pause,
    )


def read_states(
    r: Reader, rows: Sequence[EntityRow], include_state: bool = True
) -> list[EntityState]:
    """The public views of ``rows`` (their queued operations and standing pauses read)."""
    if not rows:
        return []
    pending = r.pending_entity_ops([row.entity_id for row in rows])
    standing = {p.name: p for p in r.standing_pauses(ENTITY, sorted({row.name for row in rows}))}
    return [
        state_of(row, pending.get(row.entity_id, 0), standing.get(row.name), include_state)
        for row in rows
    ]


def due_resumes(tx: Tx, now: float, limit: int) -> int:
    """Resume the paused entities whose scheduled resume time has come."""
    due = tx.due_entity_resumes(now, limit)
    for eid in due:
        resume(tx, eid, reason="scheduled resume", by="schedule", now=now)
    return len(due)
