"""From what an orchestration step decided to what it writes.

Whoever runs orchestrator code (tenuto's own replay engine, or a Durable Task SDK worker
across the network) hands over a :class:`Decision`: the history events the step consumed,
the durable actions the code took, and how the execution ended, if it did.
:func:`build` turns it into an :class:`Episode`, the complete set of rows the step writes,
which :meth:`tenuto._episode.EpisodeRunner.commit` commits in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, assert_never

from . import _control
from . import history as h
from ._json import dumps, loads
from .actions import (
    Action,
    Completed,
    ContinuedAsNew,
    CreateSubOrchestration,
    CreateTimer,
    Failed,
    Outcome,
    PauseSelf,
    ScheduleActivity,
    SendEvent,
)
from .replay import Replayer
from .status import Failure, Status
from .store.base import HistoryRow, InstanceRow, NewActivity, NewMessage


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
    #: Events the step consumed, in order: OrchestratorStarted, ExecutionStarted (first
    #: step only), then the messages that were delivered.
    new_events: list[h.Event]
    #: Inbox message ids the step consumed (delivered, or dropped as moot).
    consumed: list[int]
    actions: Sequence[Action]
    outcome: Outcome | None
    #: The custom status to store (JSON text or None), or :data:`UNCHANGED`.
    custom_status: str | _Unchanged | None = UNCHANGED
    #: The replay engine that took the step, to keep in memory if it commits.
    replayer: Replayer | None = None


@dataclass
class Episode:
    """The outcome of one step: everything it writes if it commits."""

    row: InstanceRow
    changes: dict[str, Any]
    consumed: list[int] = field(default_factory=list)
    history: list[HistoryRow] = field(default_factory=list)
    activities: list[NewActivity] = field(default_factory=list)
    messages: list[NewMessage] = field(default_factory=list)
    #: Messages for other instances (sent events), delivered only if they are live.
    sent: list[NewMessage] = field(default_factory=list)
    children: list[InstanceRow] = field(default_factory=list)
    wake_parent: bool = False
    finished: bool = False
    restarted: bool = False
    tracked: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    replayer: Replayer | None = None
    #: Written in place of a step that could not be stored (see Worker._quarantine).
    quarantined: bool = False

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


def build(d: Decision) -> Episode:
    """The writes of a step that did not fail or continue as new (see :func:`failed`,
    :func:`continued` for those)."""
    if isinstance(d.outcome, ContinuedAsNew):
        raised = [e.ts for e in d.new_events if e.type == h.EVENT_RAISED]
        return continued(d.row, d.outcome, d.now, d.consumed, min(raised, default=d.now))
    if isinstance(d.outcome, Failed):
        return failed(d.row, d.outcome.failure, d.now, d.new_events)
    row, now = d.row, d.now
    ep = Episode(row, {}, consumed=list(d.consumed))
    events = list(d.new_events)
    paused_by: PauseSelf | None = None
    for action in d.actions:
        event = _action(ep, action, now)
        if isinstance(action, PauseSelf):
            paused_by = action
        if d.replayer is not None:
            d.replayer.apply(event, replaying=False)
        events.append(event)

    ep.history = _history_rows(row, events)
    ep.changes = base_changes(row, now, len(events))
    ep.changes["status"] = Status.RUNNING
    if not isinstance(d.custom_status, _Unchanged):
        ep.changes["custom_status"] = d.custom_status

    if isinstance(d.outcome, Completed):
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


def _action(ep: Episode, action: Action, now: float) -> h.Event:
    """Record what one action writes in ``ep``; returns the history event it adds."""
    row = ep.row
    if isinstance(action, ScheduleActivity):
        ep.activities.append(
            NewActivity(
                row.instance_id,
                row.execution_id,
                action.task_id,
                action.name,
                dumps(action.input),
                None if action.retry is None else dumps(action.retry.to_json()),
                now,
                held=False,
            )
        )
        return h.Event(
            h.TASK_SCHEDULED,
            now,
            {"task_id": action.task_id, "name": action.name, "input": action.input},
        )
    if isinstance(action, CreateTimer):
        fired = h.Event(
            h.TIMER_FIRED, action.fire_at, {"task_id": action.task_id, "fire_at": action.fire_at}
        )
        ep.messages.append(NewMessage(row.instance_id, row.execution_id, fired, action.fire_at))
        return h.Event(h.TIMER_CREATED, now, {"task_id": action.task_id, "fire_at": action.fire_at})
    if isinstance(action, CreateSubOrchestration):
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
            )
        )
        created = {
            "task_id": action.task_id,
            "name": action.name,
            "instance_id": action.instance_id,
            "input": action.input,
        }
        if action.version is not None:
            created["version"] = action.version
        return h.Event(h.SUB_CREATED, now, created)
    if isinstance(action, SendEvent):
        raised = h.Event(h.EVENT_RAISED, now, {"name": action.name, "data": action.data})
        ep.sent.append(NewMessage(action.instance_id, None, raised, now))
        return h.Event(
            h.EVENT_SENT,
            now,
            {
                "task_id": action.task_id,
                "instance_id": action.instance_id,
                "name": action.name,
                "data": action.data,
            },
        )
    if isinstance(action, PauseSelf):
        return h.Event(
            h.EXECUTION_SUSPENDED,
            now,
            {
                "task_id": action.task_id,
                "reason": action.reason,
                "by": "orchestration",
                "source": "orchestration",
                "resume_at": None,
            },
        )
    # Every action is handled above (mypy checks it); one that is not is a bug, never a
    # pause nobody asked for.
    assert_never(action)


def base_changes(row: InstanceRow, now: float, new_events: int) -> dict[str, Any]:
    """The instance columns every committed step sets."""
    changes: dict[str, Any] = {
        "history_len": row.history_len + new_events,
        "updated_at": now,
        "lease": None,
        "lease_until": None,
        "claims": 0,
    }
    if row.started_at is None:
        changes["started_at"] = now
    return changes


def failed(
    row: InstanceRow, failure: Failure, now: float, new_events: Sequence[h.Event] = ()
) -> Episode:
    """The writes of a step that ends the execution FAILED."""
    # A finished instance's messages all go, consumed or not (delete_pending_work).
    ep = Episode(row, base_changes(row, now, len(new_events) + 1))
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


def continued(
    row: InstanceRow,
    outcome: ContinuedAsNew,
    now: float,
    consumed: Sequence[int],
    raised_at: float | None = None,
) -> Episode:
    """The writes of a step that continues the instance as new.

    The events it carries over are queued as raised at ``raised_at`` (when the first
    event the step received was raised), so that they come before any event raised
    while the step ran, which the new execution receives too."""
    carried_at = now if raised_at is None else min(raised_at, now)
    ep = Episode(row, base_changes(row, now, 0), consumed=list(consumed), restarted=True)
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


def _notify_parent(ep: Episode, kind: str, fields: dict[str, Any], now: float) -> None:
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
