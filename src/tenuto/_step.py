"""An orchestration step: what it receives, what it decided, what it writes.

A step of an instance takes the messages waiting in its inbox (activity results, fired
timers, external events), adds them to its history (:func:`new_events`), lets the
orchestrator code react, and writes the outcome. Whoever runs the code (tenuto's own
replay engine, or a Durable Task SDK worker across the network) hands over a
:class:`Decision`: the events the step added, the durable actions the code took, and how
the execution ended, if it did. :func:`build` turns it into a :class:`Step`, the
complete set of rows the step writes, and :func:`write` writes steps in the caller's
transaction, those whose instance is still as they found it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from . import _control, actions, metrics
from . import history as h
from ._json import dumps, loads
from ._wakeups import DONE, ENTITIES, WORK
from .actions import Action, Outcome
from .clock import Clock
from .errors import InstanceExists
from .replay import Replayer
from .status import Failure, Status, type_name
from .store.base import HistoryRow, InstanceRow, NewActivity, NewMessage, Tx
from .store.entity_base import NewEntityOp
from .store.outbox import TrackingRecord
from .tracking import track

log = logging.getLogger("tenuto.worker")

#: A step claimed this many times without committing fails the instance: the code
#: keeps crashing the workers that run it, or never yields.
MAX_CLAIMS = 10


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


#: A custom status the step did not set.
UNCHANGED: Final = _Unchanged()


@dataclass
class Decision:
    """What one orchestration step decided."""

    row: InstanceRow
    now: float
    #: Events the step added to the history before the code ran (see :func:`new_events`).
    new_events: list[h.Event]
    #: Inbox message ids the step consumed (delivered, or dropped as moot).
    consumed: list[int]
    actions: Sequence[Action]
    outcome: Outcome | None
    #: The custom status to store (JSON text or None), or :data:`UNCHANGED`.
    custom_status: str | _Unchanged | None = UNCHANGED
    #: The replay engine that took the step, to keep in memory if it commits.
    replayer: Replayer | None = None
    #: The events the code waits for after the step, as ``(name, deadline)`` (``None``:
    #: not known, as for a Durable Task SDK's orchestration).
    awaiting: Sequence[tuple[str, float | None]] | None = None


@dataclass
class Step:
    """One step's outcome: everything it writes if it commits."""

    row: InstanceRow
    changes: dict[str, Any]
    consumed: list[int] = field(default_factory=list)
    history: list[HistoryRow] = field(default_factory=list)
    activities: list[NewActivity] = field(default_factory=list)
    messages: list[NewMessage] = field(default_factory=list)
    #: Messages for other instances (sent events), delivered only if they are live.
    sent: list[NewMessage] = field(default_factory=list)
    children: list[InstanceRow] = field(default_factory=list)
    #: Operations sent to entities (calls, signals, locks, unlocks).
    entity_ops: list[NewEntityOp] = field(default_factory=list)
    #: Whether the execution may hold entity locks (to release if it ends): unknown
    #: unless tenuto's replay engine ran it and saw no lock requested.
    may_hold_locks: bool = True
    wake_parent: bool = False
    finished: bool = False
    restarted: bool = False
    tracked: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    replayer: Replayer | None = None
    #: Written in place of a step that could not be stored (see Worker._quarantine).
    quarantined: bool = False
    #: The step pauses the instance: hold all its queued activities (see :func:`paused`).
    holds: bool = False

    @property
    def instance_id(self) -> str:
        return self.row.instance_id

    @property
    def lease(self) -> str:
        assert self.row.lease is not None
        return self.row.lease


def execution_started(row: InstanceRow, now: float) -> h.Event:
    """The ``ExecutionStarted`` event of an execution's first step."""
    return h.Event(
        h.EXECUTION_STARTED,
        now,
        {
            "name": row.name,
            "input": loads(row.input),
            "generation": row.generation,
            "parent_instance_id": row.parent_instance_id,
        },
    )


def due_messages(
    row: InstanceRow, messages: Sequence[h.Message], now: float
) -> tuple[list[h.Message], list[int]]:
    """The inbox messages a step delivers, in the order things happened (an event raised
    before a timer came due comes before the timer, even when both waited for a resume),
    and the ids of every message the step consumes: those plus the results meant for an
    execution that has continued as new. Timers not due yet stay in the inbox."""
    delivered: list[h.Message] = []
    consumed: list[int] = []
    for msg in sorted(messages, key=lambda m: (m.visible_at, m.id)):
        if msg.event.type == h.TIMER_FIRED and msg.visible_at > now:
            continue
        consumed.append(msg.id)
        if msg.execution_id is None or msg.execution_id == row.execution_id:
            delivered.append(msg)
    return delivered, consumed


class Execution(Protocol):
    """The execution a step runs on, as far as choosing the step's events goes."""

    @property
    def started(self) -> bool:
        """Whether its ``ExecutionStarted`` event is in its history."""

    def receive(self, event: h.Event) -> bool:
        """Take one event the step adds; ``False`` if it is moot (a duplicate result,
        or anything after the execution ended) and stays out of the history."""


def new_events(
    row: InstanceRow, messages: Sequence[h.Message], now: float, execution: Execution
) -> tuple[list[h.Event], list[int]]:
    """The events a step adds to the history before the code runs on, given to
    ``execution`` in order: ``OrchestratorStarted``, ``ExecutionStarted`` (an
    execution's first step), then the inbox messages it delivers (:func:`due_messages`)
    that ``execution`` does not find moot; and the ids of every message it consumes."""
    events = [h.Event(h.ORCHESTRATOR_STARTED, now)]
    execution.receive(events[0])
    if not execution.started:
        events.append(execution_started(row, now))
        execution.receive(events[-1])
    delivered, consumed = due_messages(row, messages, now)
    for msg in delivered:
        if execution.receive(msg.event):
            events.append(msg.event)
        else:
            log.debug("dropping %s for %s: moot", msg.event.type, row.instance_id)
    return events, consumed


class PastHistory:
    """An execution known only by its history (a Durable Task SDK worker runs its code):
    a result is moot if its task is not waiting for one."""

    def __init__(self, past: Sequence[h.Event]) -> None:
        self.started = any(e.type == h.EXECUTION_STARTED for e in past)
        self._waiting: set[Any] = set()
        for e in past:
            if e.type in (
                h.TASK_SCHEDULED,
                h.TIMER_CREATED,
                h.SUB_CREATED,
                h.ENTITY_CALLED,
                h.ENTITY_LOCK_REQUESTED,
            ):
                self._waiting.add(e.data.get("task_id", -1))
            elif e.type in h.TASK_RESULTS:
                self._waiting.discard(e.data.get("task_id", -1))

    def receive(self, event: h.Event) -> bool:
        if event.type in h.TASK_RESULTS:
            task_id = event.data.get("task_id", -1)
            if task_id not in self._waiting:
                return False
            self._waiting.discard(task_id)
        return True


def build(d: Decision) -> Step:
    """The writes of a step (see :func:`failed`, :func:`continued` for its ends)."""
    ep = _build(d)
    if d.replayer is not None and not d.replayer.locked_ever:
        ep.may_hold_locks = False
    return ep


def _build(d: Decision) -> Step:
    if isinstance(d.outcome, actions.ContinuedAsNew):
        raised = [e.ts for e in d.new_events if e.type == h.EVENT_RAISED]
        ep = continued(d.row, d.outcome, d.now, d.consumed, min(raised, default=d.now))
        for action in d.actions:
            if isinstance(action, actions.ONE_WAY):  # the rest is moot, and so is the history
                _rows_of(action)(ep, action, d.now)
        return ep
    if isinstance(d.outcome, actions.Failed):
        return failed(d.row, d.outcome.failure, d.now, d.new_events)
    row, now = d.row, d.now
    ep = Step(row, {}, consumed=list(d.consumed))
    events = list(d.new_events)
    paused_by: actions.PauseSelf | None = None
    for action in d.actions:
        rows_of = _rows_of(action)  # an action this engine does not know is refused first
        event = action.event(now)
        rows_of(ep, action, now)
        if isinstance(action, actions.PauseSelf):
            paused_by = action
        if d.replayer is not None:
            d.replayer.apply(event, replaying=False)
        events.append(event)

    ep.history = _history_rows(row, events)
    ep.changes = base_changes(row, now, len(events))
    ep.changes["status"] = Status.RUNNING
    if not isinstance(d.custom_status, _Unchanged):
        ep.changes["custom_status"] = d.custom_status
    if d.awaiting:
        ep.changes["awaiting"] = dumps([{"name": n, "timeout_at": t} for n, t in d.awaiting])

    if isinstance(d.outcome, actions.Completed):
        seq = row.history_len + len(events)
        ep.history.append(
            HistoryRow(
                row.instance_id,
                seq,
                h.Event(
                    h.EXECUTION_COMPLETED,
                    now,
                    {"status": Status.COMPLETED.value, "result": d.outcome.output},
                ),
            )
        )
        ep.changes.update(
            status=Status.COMPLETED,
            output=dumps(d.outcome.output),
            completed_at=now,
            next_due=None,
            history_len=seq + 1,
        )
        ep.finished = True
        if row.parent_instance_id:
            _notify_parent(ep, h.SUB_COMPLETED, {"result": d.outcome.output}, now)
        ep.tracked.append(("completed", {"name": row.name}))
        return ep
    if paused_by is not None:
        ep.changes.update(
            status=Status.PAUSED,
            next_due=None,
            pause_reason=paused_by.reason,
            pause_by="orchestration",
            pause_since=now,
            pause_resume_at=None,
            pause_source="orchestration",
        )
        for activity in ep.activities:
            activity.held = True
        ep.tracked.append(
            (
                "paused",
                {
                    "reason": paused_by.reason,
                    "by": "orchestration",
                    "source": "orchestration",
                },
            )
        )
    ep.replayer = d.replayer
    return ep


# -- the rows of each action besides its history event (see tenuto.actions) -----------


def _activity_rows(ep: Step, action: actions.ScheduleActivity, now: float) -> None:
    row = ep.row
    retry = None if action.retry is None else dumps(action.retry.to_json())
    ep.activities.append(
        NewActivity(
            row.instance_id,
            row.execution_id,
            action.task_id,
            action.name,
            dumps(action.input),
            retry,
            now,
            held=False,
            # The instance's trace context (a traced step puts its own span here).
            trace_parent=row.trace_parent,
        )
    )


def _timer_rows(ep: Step, action: actions.CreateTimer, now: float) -> None:
    data = {"task_id": action.task_id, "fire_at": action.fire_at}
    fired = h.Event(h.TIMER_FIRED, action.fire_at, data)
    ep.messages.append(NewMessage(ep.instance_id, ep.row.execution_id, fired, action.fire_at))


def _child_rows(ep: Step, action: actions.CreateSubOrchestration, now: float) -> None:
    row = ep.row
    ep.children.append(
        InstanceRow(
            instance_id=action.instance_id,
            name=action.name,
            status=Status.PENDING,
            execution_id=_control.new_execution_id(),
            input=dumps(action.input),
            created_at=now,
            updated_at=now,
            parent_instance_id=row.instance_id,
            parent_execution_id=row.execution_id,
            parent_task_id=action.task_id,
            next_due=now,
            version=action.version,
            tags=action.tags,
            trace_parent=row.trace_parent,
        )
    )


def _sent_rows(ep: Step, action: actions.SendEvent, now: float) -> None:
    raised = h.Event(h.EVENT_RAISED, now, {"name": action.name, "data": action.data})
    ep.sent.append(NewMessage(action.instance_id, None, raised, now))


def _entity_op(ep: Step, entity: str, kind: str, task_id: int, at: float) -> NewEntityOp:
    row = ep.row
    return NewEntityOp(entity, kind, None, None, at, row.instance_id, row.execution_id, task_id)


def _call_rows(ep: Step, action: actions.CallEntity, now: float) -> None:
    op = _entity_op(ep, action.entity, "call", action.task_id, now)
    op.operation, op.input = action.name, dumps(action.input)
    ep.entity_ops.append(op)


def _signal_rows(ep: Step, action: actions.SignalEntity, now: float) -> None:
    at = now if action.signal_time is None else action.signal_time
    op = _entity_op(ep, action.entity, "signal", action.task_id, at)
    op.operation, op.input = action.name, dumps(action.input)
    ep.entity_ops.append(op)


def _lock_rows(ep: Step, action: actions.LockEntities, now: float) -> None:
    # The first entity is locked first; each forwards the request to the next, in the
    # sorted order every critical section uses, so two sections cannot deadlock.
    op = _entity_op(ep, action.entities[0], "lock", action.task_id, now)
    op.lock_set = dumps(list(action.entities[1:]))
    ep.entity_ops.append(op)


def _unlock_rows(ep: Step, action: actions.UnlockEntities, now: float) -> None:
    ep.entity_ops += [_entity_op(ep, e, "unlock", action.task_id, now) for e in action.entities]


def _no_rows(ep: Step, action: Action, now: float) -> None:
    """A self-pause writes its state, not rows (see :func:`build`); a patch marker, its
    history event only."""


_ROWS: dict[type, Callable[[Step, Any, float], None]] = {
    actions.ScheduleActivity: _activity_rows,
    actions.CreateTimer: _timer_rows,
    actions.CreateSubOrchestration: _child_rows,
    actions.SendEvent: _sent_rows,
    actions.PauseSelf: _no_rows,
    actions.PatchMarker: _no_rows,
    actions.CallEntity: _call_rows,
    actions.SignalEntity: _signal_rows,
    actions.LockEntities: _lock_rows,
    actions.UnlockEntities: _unlock_rows,
}


def _rows_of(action: Action) -> Callable[[Step, Any, float], None]:
    try:
        return _ROWS[type(action)]
    except KeyError:
        raise TypeError(f"a step cannot carry out the action {action!r}") from None


def base_changes(row: InstanceRow, now: float, new_events: int) -> dict[str, Any]:
    """The instance columns every committed step sets."""
    changes: dict[str, Any] = {
        "history_len": row.history_len + new_events,
        "updated_at": now,
        "lease": None,
        "lease_until": None,
        "claims": 0,
        # Set again by a step whose code waits for events (see Decision.awaiting).
        "awaiting": None,
    }
    if row.started_at is None:
        changes["started_at"] = now
    return changes


def failed(
    row: InstanceRow, failure: Failure, now: float, new_events: Sequence[h.Event] = ()
) -> Step:
    """The writes of a step that ends the execution FAILED."""
    # A finished instance's messages all go, consumed or not (delete_pending_work).
    ep = Step(row, base_changes(row, now, len(new_events) + 1))
    ep.history = _history_rows(row, new_events)
    ep.history.append(
        HistoryRow(
            row.instance_id,
            row.history_len + len(new_events),
            h.Event(
                h.EXECUTION_COMPLETED,
                now,
                {"status": Status.FAILED.value, "failure": failure.to_json()},
            ),
        )
    )
    ep.changes.update(
        status=Status.FAILED, failure=dumps(failure.to_json()), completed_at=now, next_due=None
    )
    ep.finished = True
    if row.parent_instance_id:
        _notify_parent(ep, h.SUB_FAILED, {"failure": failure.to_json()}, now)
    ep.tracked.append(("failed", {"name": row.name, "error": f"{failure.type}: {failure.message}"}))
    return ep


def abandoned(row: InstanceRow, now: float, cause: str) -> Step:
    """The writes of a step claimed more than :data:`MAX_CLAIMS` times without
    completing: it fails the instance. ``cause`` says what keeps it from completing."""
    message = f"the orchestration step was claimed {row.claims - 1} times without completing"
    return failed(row, Failure("tenuto.StepAbandoned", f"{message}: {cause}"), now)


def paused(
    row: InstanceRow, now: float, reason: str, source: str, details: dict[str, Any] | None = None
) -> Step:
    """The writes of a step that pauses the instance instead of running its code on (its
    code no longer matches its history, or a child failed under a call that pauses on
    failure, see :mod:`tenuto._failures`): the history gains only the pause record
    (``ExecutionSuspended`` by ``"tenuto"`` from ``source``, with ``details``), nothing of
    the inbox is consumed (resuming replays again with the messages that were due), and
    the instance's queued activities are held, as by any pause."""
    data = {"reason": reason, "by": "tenuto", "source": source, "resume_at": None}
    if details:
        data.update(details)
    ep = Step(row, base_changes(row, now, 1), holds=True)
    ep.history = _history_rows(row, [h.Event(h.EXECUTION_SUSPENDED, now, data)])
    ep.changes.update(
        status=Status.PAUSED,
        next_due=None,
        pause_reason=reason,
        pause_by="tenuto",
        pause_since=now,
        pause_resume_at=None,
        pause_source=source,
    )
    ep.tracked.append(("paused", {"reason": reason, "by": "tenuto", "source": source}))
    return ep


def continued(
    row: InstanceRow,
    outcome: actions.ContinuedAsNew,
    now: float,
    consumed: Sequence[int],
    raised_at: float | None = None,
) -> Step:
    """The writes of a step that continues the instance as new.

    The events it carries over are queued as raised at ``raised_at`` (when the first
    event the step received was raised), so that they come before any event raised
    while the step ran, which the new execution receives too."""
    carried_at = now if raised_at is None else min(raised_at, now)
    ep = Step(row, base_changes(row, now, 0), consumed=list(consumed), restarted=True)
    ep.changes.update(
        execution_id=_control.new_execution_id(),
        generation=row.generation + 1,
        input=dumps(outcome.input),
        history_len=0,
        status=Status.RUNNING,
    )
    if outcome.version is not None:  # otherwise the instance keeps its version (and tags)
        ep.changes["version"] = outcome.version
    ep.messages.extend(
        NewMessage(
            row.instance_id,
            None,
            h.Event(h.EVENT_RAISED, carried_at, {"name": name, "data": data}),
            carried_at,
        )
        for name, data in outcome.carry_over
    )
    ep.tracked.append(("continued_as_new", {"name": row.name}))
    return ep


def _history_rows(row: InstanceRow, events: Sequence[h.Event]) -> list[HistoryRow]:
    return [HistoryRow(row.instance_id, row.history_len + i, e) for i, e in enumerate(events)]


def _notify_parent(ep: Step, kind: str, fields: dict[str, Any], now: float) -> None:
    row = ep.row
    assert row.parent_instance_id is not None
    ep.messages.append(
        NewMessage(
            row.parent_instance_id,
            row.parent_execution_id,
            h.Event(kind, now, {"task_id": row.parent_task_id, **fields}),
            now,
        )
    )
    ep.wake_parent = True


# -- writing steps ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Committed:
    """What writing a batch of steps did."""

    count: int
    #: It queued activities.
    activities: bool
    #: It made other instances due (children, parents, restarts).
    instances: bool
    #: Call before the transaction ends, after its last read if possible: it records the
    #: activities a standing pause holds (a read the store may answer late).
    finish: Callable[[], None] = field(default=lambda: None)
    #: Instances whose step was discarded (they changed meanwhile), replayer and all.
    discarded: tuple[str, ...] = ()
    #: The steps written.
    written: tuple[Step, ...] = ()


def lock_names(tx: Tx, steps: Sequence[Step]) -> None:
    """Take the shared locks on the names whose standing pauses the writing of
    ``steps`` reads (their new activities, their new children): before any instance
    lock, as every transaction takes them."""
    activities = sorted({a.name for ep in steps for a in ep.activities})
    children = sorted({c.name for ep in steps for c in ep.children})
    if activities:
        tx.lock_names(_control.ACTIVITY, activities, exclusive=False)
    if children:
        tx.lock_names(_control.ORCHESTRATOR, children, exclusive=False)


def write(
    tx: Tx, steps: Sequence[Step], now: float, clock: Clock, *, leased_here: bool = False
) -> Committed:
    """Write the steps whose instance is still theirs: leased with the step's lease,
    live, unpaused, its history as the step found it (``leased_here``: known to be, as
    this transaction leased them). The others are discarded; their messages stay queued
    for a later step."""
    # Names before instances, instances in id order: the order of every transaction.
    lock_names(tx, steps)
    steps = sorted(steps, key=lambda ep: ep.instance_id)
    results = tx.update_leased_instances(
        [(ep.instance_id, ep.lease, ep.row.history_len, ep.changes) for ep in steps],
        verify=not leased_here,
    )
    done = [ep for ep, ok in zip(steps, results, strict=True) if ok]
    discarded = tuple(ep.instance_id for ep, ok in zip(steps, results, strict=True) if not ok)
    for ep in steps:
        if ep.instance_id in discarded:
            # Paused, terminated or taken over meanwhile: its messages stay queued.
            tx.release_instances([ep.instance_id], ep.lease)
            log.debug("discarded a step of %s: the instance changed meanwhile", ep.instance_id)
    if not done:
        return Committed(0, False, False, discarded=discarded)
    _settle_inboxes(tx, done)
    holding = [ep.instance_id for ep in done if ep.holds]
    if holding:
        tx.hold_activities(holding)
    history = [r for ep in done for r in ep.history]
    if history:
        # Leased here, unchecked yet: a taken number means the instance was not as
        # presumed, and the caller's check then rolls the transaction back.
        tx.append_history(history, skip_taken=leased_here)
    messages = [m for ep in done for m in ep.messages]
    wake = [ep.row.parent_instance_id for ep in done if ep.wake_parent]
    sent = _deliverable(tx, [m for ep in done for m in ep.sent])
    messages += sent
    wake += [m.instance_id for m in sent]
    refused = _create_children(tx, done, now)
    messages += refused
    wake += [m.instance_id for m in refused]
    activities = [a for ep in done for a in ep.activities]
    finish: Callable[[], None] = _nothing
    if activities:
        # Whether a standing pause holds them is read under the names' lock (taken
        # above), so a pause or resume of their type cannot happen half before and
        # half after.
        tx.insert_activities(activities)
        finish = _record_held(tx, activities, now)
    if messages:
        tx.add_messages(messages)
    entity_work = _entity_writes(tx, done, now)
    live = [ep.instance_id for ep in done if not ep.finished]
    if live:
        # From the inbox, not from memory: messages may have come in during the step.
        tx.recompute_due(live, now)
    restarted = [ep.instance_id for ep in done if ep.restarted]
    if restarted:
        tx.set_due(restarted, now)
    if wake:
        tx.set_due([w for w in wake if w is not None], now)
    made_due = bool(wake or restarted or any(ep.children for ep in done))
    if activities or made_due:
        tx.wake(WORK)
    if entity_work:
        tx.wake(ENTITIES)
    if any(ep.finished for ep in done):
        tx.wake(DONE)
    for ep in done:
        for event, extra in ep.tracked:
            tx.track(TrackingRecord(event, ep.instance_id, now, extra))
    tx.after_commit(lambda: _observe(done, clock.now()))
    return Committed(len(done), bool(activities), made_due, finish, discarded, tuple(done))


def _settle_inboxes(tx: Tx, done: Sequence[Step]) -> None:
    """Delete what the written steps consumed, and what their end leaves moot."""
    consumed = [m for ep in done for m in ep.consumed]
    if consumed:
        tx.delete_messages(consumed)
    ended = [ep.instance_id for ep in done if ep.finished]
    if ended:
        tx.delete_pending_work(ended)
    renewed = [ep.instance_id for ep in done if ep.restarted]
    if renewed:
        # Events raised while this step ran were not delivered to it: they belong to
        # the new execution (as in the Durable Task Framework), not to the bin.
        tx.delete_pending_work(renewed, keep_events=True)
        for iid in renewed:
            tx.delete_history(iid)


def _entity_writes(tx: Tx, done: Sequence[Step], now: float) -> bool:
    """Queue the operations the steps sent to entities, and unlock the entities of the
    executions that ended (completed, failed, continued as new); whether there was any."""
    ops = [op for ep in done for op in ep.entity_ops]
    if ops:
        tx.add_entity_ops(ops, now)
    ended = [ep.instance_id for ep in done if (ep.finished or ep.restarted) and ep.may_hold_locks]
    released = tx.release_entity_locks(ended) if ended else []
    return bool(ops or released)


def _deliverable(tx: Tx, sent: Sequence[NewMessage]) -> list[NewMessage]:
    """The sent events whose target is live (events sent to instances that do not exist
    or have finished are dropped)."""
    if not sent:
        return []
    targets = tx.statuses(sorted({m.instance_id for m in sent}))
    return [m for m in sent if m.instance_id in targets and not targets[m.instance_id].is_terminal]


def _create_children(tx: Tx, done: Sequence[Step], now: float) -> list[NewMessage]:
    """Insert the new sub-orchestrations (PAUSED under a standing pause of their
    orchestrator); returns the failures to send to parents whose child id is taken."""
    children = [(ep, child) for ep in done for child in ep.children]
    if not children:
        return []
    held = _control.hold_if_type_paused(tx, [c for _, c in children], now)
    inserted = tx.insert_instances([c for _, c in children])
    created = {c.instance_id for (_, c), ok in zip(children, inserted, strict=True) if ok}
    created |= _replace_finished_children(
        tx, [(ep, c) for ep, c in children if c.instance_id not in created]
    )
    _control.record_type_holds(tx, [(c, sp) for c, sp in held if c.instance_id in created], now)
    # An id that is taken: the parent's call fails rather than adopt a stranger.
    return [_child_exists(ep, c, now) for ep, c in children if c.instance_id not in created]


def _replace_finished_children(tx: Tx, taken: list[tuple[Step, InstanceRow]]) -> set[str]:
    """Create again the children whose id is taken by a finished child of the same
    parent: a retried sub-orchestration (the Durable Task SDKs retry one under the id
    of its failed attempt, and the Durable Task Framework replaces it). Returns the ids
    created; an id taken by anything else stays taken."""
    if not taken:
        return set()
    existing = {r.instance_id: r for r in tx.lock_instances([c.instance_id for _, c in taken])}
    again = [
        c
        for ep, c in taken
        if (old := existing.get(c.instance_id)) is not None
        and old.status.is_terminal
        and old.parent_instance_id == ep.instance_id
    ]
    if not again:
        return set()
    tx.delete_instances([c.instance_id for c in again])
    inserted = tx.insert_instances(again)
    return {c.instance_id for c, ok in zip(again, inserted, strict=True) if ok}


def _child_exists(ep: Step, child: InstanceRow, now: float) -> NewMessage:
    error = InstanceExists(child.instance_id)
    failure = Failure(type_name(InstanceExists), str(error))
    return NewMessage(
        ep.instance_id,
        ep.row.execution_id,
        h.Event(h.SUB_FAILED, now, {"task_id": child.parent_task_id, "failure": failure.to_json()}),
        now,
    )


def _record_held(tx: Tx, activities: Sequence[NewActivity], now: float) -> Callable[[], None]:
    """Record in history the new activities a standing activity pause holds. The read
    goes out now; its answer is used when the returned function is called."""
    names = sorted({a.name for a in activities})
    pauses = tx.standing_pauses_later(_control.ACTIVITY, names)

    def record() -> None:
        paused = {p.name: p for p in pauses()}
        if not paused:
            return
        done: set[tuple[str, str]] = set()
        for a in activities:
            sp = paused.get(a.name)
            if sp is None or (a.instance_id, a.name) in done:
                continue
            done.add((a.instance_id, a.name))
            data = {"activity": sp.name, "reason": sp.reason, "by": sp.by}
            tx.annotate([a.instance_id], h.Event(h.ACTIVITY_HELD, now, data))
            _control.track_each(tx, "activity_held", [a.instance_id], **data)

    return record


def _observe(done: Sequence[Step], committed: float) -> None:
    """Once written: the step-latency metric and the local tracking log (the records
    went to the outbox with the step)."""
    for ep in done:
        if ep.row.next_due is not None:
            metrics.step_seconds.observe(max(committed - ep.row.next_due, 0.0))
        for event, extra in ep.tracked:
            track(event, ep.instance_id, **extra)


def _nothing() -> None:
    pass
