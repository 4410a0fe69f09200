"""Orchestration episodes: apply an instance's new messages, run its code, commit.

An episode takes the messages waiting for one instance (activity results, fired timers,
external events), turns them into history events, lets the orchestrator code react, and
writes the new history, the actions the code took and the instance's new state in the
caller's transaction. Many episodes share one transaction.

Live replayers are cached between episodes, keyed by instance. A cached replayer is used
only if it is at or behind the stored history of the same execution; events stored since
(a pause record, or steps another worker took) are applied to catch it up. Anything else
(a different execution, a shorter history) is a stale entry: it is dropped and the
instance is replayed from its full history. A replayer returns to the cache only after
its episode committed, so a rolled-back episode never leaves state behind.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from . import _control
from . import history as h
from ._json import dumps, loads
from .actions import (
    Completed,
    ContinuedAsNew,
    CreateSubOrchestration,
    CreateTimer,
    Failed,
    PauseSelf,
    ScheduleActivity,
)
from .app import App
from .errors import InstanceExists
from .replay import Replayer
from .status import Failure, Status, type_name
from .store.base import HistoryRow, InstanceRow, NewActivity, NewMessage, Tx
from .tracking import track

log = logging.getLogger("tenuto.worker")


class ReplayCache:
    """Live replayers by instance id, least recently used first out."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, Replayer] = OrderedDict()

    def take(self, row: InstanceRow) -> Replayer | None:
        """Remove and return the cached replayer of ``row`` if it is still usable."""
        replayer = self._items.pop(row.instance_id, None)
        if replayer is None:
            return None
        if replayer.execution_id != row.execution_id or replayer.history_len > row.history_len:
            return None  # stale: the instance moved on without this worker
        return replayer

    def put(self, replayer: Replayer) -> None:
        if self.capacity <= 0:
            return
        self._items[replayer.instance_id] = replayer
        self._items.move_to_end(replayer.instance_id)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def drop(self, instance_id: str) -> None:
        self._items.pop(instance_id, None)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class _Writes:
    """Everything a batch of episodes writes, collected so it is written in bulk."""

    consumed: list[int] = field(default_factory=list)
    history: list[HistoryRow] = field(default_factory=list)
    activities: list[NewActivity] = field(default_factory=list)
    messages: list[NewMessage] = field(default_factory=list)
    children: list[InstanceRow] = field(default_factory=list)
    updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    due_now: list[str] = field(default_factory=list)
    tracked: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    cached: list[Replayer] = field(default_factory=list)

    def merge(self, other: _Writes) -> None:
        for f in fields(self):
            getattr(self, f.name).extend(getattr(other, f.name))


class EpisodeRunner:
    """Runs episodes for one worker, with its replay cache."""

    def __init__(self, app: App, cache: ReplayCache) -> None:
        self.app = app
        self.cache = cache

    def run(self, tx: Tx, rows: Sequence[InstanceRow], now: float) -> int:
        """Run one episode for each claimed instance; returns how many ran."""
        if not rows:
            return 0
        inbox = tx.load_messages([r.instance_id for r in rows])
        w = _Writes()
        for row in rows:
            # Each episode collects its writes apart, so one that breaks adds nothing.
            local = _Writes()
            try:
                self._episode(tx, row, inbox[row.instance_id], now, local)
            except Exception as exc:  # an engine fault must not stall every other instance
                log.exception("episode of instance %s failed unexpectedly", row.instance_id)
                local = _Writes()
                self._fail_instance(row, Failure.from_exception(exc), now, local, [])
            w.merge(local)
        self._write(tx, w, now)
        return len(rows)

    # -- one episode -----------------------------------------------------------------

    def _replayer_for(self, tx: Tx, row: InstanceRow) -> Replayer:
        replayer = self.cache.take(row)
        if replayer is None:
            orchestrator = self.app.get_orchestrator(row.name)
            replayer = Replayer(self.app, orchestrator, row.instance_id, row.execution_id)
        if replayer.history_len < row.history_len:
            for event in tx.load_history(row.instance_id, replayer.history_len):
                replayer.apply(event, replaying=True)
        return replayer

    def _episode(
        self, tx: Tx, row: InstanceRow, messages: list[h.Message], now: float, w: _Writes
    ) -> None:
        replayer = self._replayer_for(tx, row)
        new_events: list[h.Event] = []

        def add(event: h.Event) -> None:
            replayer.apply(event, replaying=False)
            new_events.append(event)

        add(h.Event(h.ORCHESTRATOR_STARTED, now))
        first = not replayer.started and replayer.outcome is None
        if first:
            add(
                h.Event(
                    h.EXECUTION_STARTED,
                    now,
                    {
                        "name": row.name,
                        "input": loads(row.input),
                        "generation": row.generation,
                        "parent_instance_id": row.parent_instance_id,
                    },
                )
            )

        remaining: list[h.Message] = []
        for msg in messages:
            event = msg.event
            if event.type == h.TIMER_FIRED and msg.visible_at > now:
                remaining.append(msg)
                continue
            w.consumed.append(msg.id)
            if msg.execution_id is not None and msg.execution_id != row.execution_id:
                continue  # meant for an execution that has continued as new
            if replayer.outcome is not None:
                if isinstance(replayer.outcome, ContinuedAsNew) and event.type == h.EVENT_RAISED:
                    replayer.add_carry_over(event.data["name"], event.data.get("data"))
                continue
            if replayer.wants(event):
                add(event)
            else:
                log.debug("dropping duplicate %s for %s", event.type, row.instance_id)

        outcome = replayer.outcome
        if isinstance(outcome, ContinuedAsNew):
            self._continue_as_new(row, outcome, now, w)
            return
        if isinstance(outcome, Failed):
            self._fail_instance(row, outcome.failure, now, w, new_events)
            return

        paused_by: PauseSelf | None = None
        next_due = min((m.visible_at for m in remaining), default=None)
        for action in replayer.take_actions():
            if isinstance(action, ScheduleActivity):
                event = h.Event(
                    h.TASK_SCHEDULED,
                    now,
                    {
                        "task_id": action.task_id,
                        "name": action.name,
                        "input": action.input,
                    },
                )
                w.activities.append(
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
            elif isinstance(action, CreateTimer):
                event = h.Event(
                    h.TIMER_CREATED,
                    now,
                    {
                        "task_id": action.task_id,
                        "fire_at": action.fire_at,
                    },
                )
                w.messages.append(
                    NewMessage(
                        row.instance_id,
                        row.execution_id,
                        h.Event(
                            h.TIMER_FIRED,
                            action.fire_at,
                            {"task_id": action.task_id, "fire_at": action.fire_at},
                        ),
                        action.fire_at,
                    )
                )
                next_due = action.fire_at if next_due is None else min(next_due, action.fire_at)
            elif isinstance(action, CreateSubOrchestration):
                event = h.Event(
                    h.SUB_CREATED,
                    now,
                    {
                        "task_id": action.task_id,
                        "name": action.name,
                        "instance_id": action.instance_id,
                        "input": action.input,
                    },
                )
                w.children.append(
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
                    )
                )
            else:
                paused_by = action
                event = h.Event(
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
            add(event)

        changes: dict[str, Any] = {
            "history_len": row.history_len + len(new_events),
            "updated_at": now,
            "next_due": next_due,
            "status": Status.RUNNING,
        }
        if first:
            changes["started_at"] = now
        if replayer.custom_status_changed:
            changes["custom_status"] = replayer.custom_status_json
            replayer.custom_status_changed = False
        self._history(row, new_events, w)

        if isinstance(outcome, Completed):
            output = dumps(outcome.output)
            w.history.append(
                HistoryRow(
                    row.instance_id,
                    changes["history_len"],
                    h.Event(
                        h.EXECUTION_COMPLETED,
                        now,
                        {"status": Status.COMPLETED.value, "result": outcome.output},
                    ),
                )
            )
            changes.update(
                status=Status.COMPLETED,
                output=output,
                completed_at=now,
                next_due=None,
                history_len=changes["history_len"] + 1,
            )
            w.finished.append(row.instance_id)
            if row.parent_instance_id:
                self._notify_parent(row, h.SUB_COMPLETED, {"result": outcome.output}, now, w)
            w.tracked.append(("completed", row.instance_id, {"name": row.name}))
        else:
            if paused_by is not None:
                changes.update(
                    status=Status.PAUSED,
                    next_due=None,
                    pause_reason=paused_by.reason,
                    pause_by="orchestration",
                    pause_since=now,
                    pause_resume_at=None,
                    pause_source="orchestration",
                )
                for activity in w.activities:
                    if activity.instance_id == row.instance_id:
                        activity.held = True
                w.tracked.append(
                    (
                        "paused",
                        row.instance_id,
                        {
                            "reason": paused_by.reason,
                            "by": "orchestration",
                            "source": "orchestration",
                        },
                    )
                )
            w.cached.append(replayer)
        w.updates.append((row.instance_id, changes))

    def _history(self, row: InstanceRow, events: list[h.Event], w: _Writes) -> None:
        w.history.extend(
            HistoryRow(row.instance_id, row.history_len + i, event)
            for i, event in enumerate(events)
        )

    def _fail_instance(
        self,
        row: InstanceRow,
        failure: Failure,
        now: float,
        w: _Writes,
        new_events: list[h.Event],
    ) -> None:
        self._history(row, new_events, w)
        seq = row.history_len + len(new_events)
        w.history.append(
            HistoryRow(
                row.instance_id,
                seq,
                h.Event(
                    h.EXECUTION_COMPLETED,
                    now,
                    {"status": Status.FAILED.value, "failure": failure.to_json()},
                ),
            )
        )
        w.updates.append(
            (
                row.instance_id,
                {
                    "status": Status.FAILED,
                    "failure": dumps(failure.to_json()),
                    "completed_at": now,
                    "updated_at": now,
                    "next_due": None,
                    "history_len": seq + 1,
                    **({"started_at": now} if row.started_at is None else {}),
                },
            )
        )
        w.finished.append(row.instance_id)
        if row.parent_instance_id:
            self._notify_parent(row, h.SUB_FAILED, {"failure": failure.to_json()}, now, w)
        w.tracked.append(
            (
                "failed",
                row.instance_id,
                {
                    "name": row.name,
                    "error": f"{failure.type}: {failure.message}",
                },
            )
        )

    def _continue_as_new(
        self, row: InstanceRow, outcome: ContinuedAsNew, now: float, w: _Writes
    ) -> None:
        w.restarted.append(row.instance_id)
        w.updates.append(
            (
                row.instance_id,
                {
                    "execution_id": _control.new_execution_id(),
                    "generation": row.generation + 1,
                    "input": dumps(outcome.input),
                    "history_len": 0,
                    "status": Status.RUNNING,
                    "updated_at": now,
                    "next_due": now,
                    **({"started_at": now} if row.started_at is None else {}),
                },
            )
        )
        w.messages.extend(
            NewMessage(
                row.instance_id,
                None,
                h.Event(h.EVENT_RAISED, now, {"name": name, "data": data}),
                now,
            )
            for name, data in outcome.carry_over
        )
        w.tracked.append(("continued_as_new", row.instance_id, {"name": row.name}))

    def _notify_parent(
        self, row: InstanceRow, kind: str, fields: dict[str, Any], now: float, w: _Writes
    ) -> None:
        assert row.parent_instance_id is not None
        w.messages.append(
            NewMessage(
                row.parent_instance_id,
                row.parent_execution_id,
                h.Event(kind, now, {"task_id": row.parent_task_id, **fields}),
                now,
            )
        )
        w.due_now.append(row.parent_instance_id)

    # -- writing ---------------------------------------------------------------------

    def _write(self, tx: Tx, w: _Writes, now: float) -> None:
        if w.consumed:
            tx.delete_messages(w.consumed)
        if w.finished or w.restarted:
            tx.delete_pending_work(w.finished + w.restarted)
        for iid in w.restarted:
            tx.delete_history(iid)
        if w.history:
            tx.append_history(w.history)
        for child in w.children:
            if not tx.insert_instance(child):
                # The id is taken: the parent's call fails instead of adopting a stranger.
                error = InstanceExists(child.instance_id)
                failure = Failure(type_name(type(error)), str(error))
                w.messages.append(
                    NewMessage(
                        child.parent_instance_id,  # type: ignore[arg-type]
                        child.parent_execution_id,
                        h.Event(
                            h.SUB_FAILED,
                            now,
                            {"task_id": child.parent_task_id, "failure": failure.to_json()},
                        ),
                        now,
                    )
                )
                w.due_now.append(child.parent_instance_id)  # type: ignore[arg-type]
        if w.activities:
            tx.insert_activities(w.activities)
        if w.messages:
            tx.add_messages(w.messages)
        for iid, changes in w.updates:
            tx.update_instance(iid, changes)
        if w.due_now:
            tx.set_due(w.due_now, now)
        if w.children or w.activities or w.due_now:
            tx.wake()
        finished = set(w.finished) | set(w.restarted)
        for iid in finished:
            self.cache.drop(iid)
        cached = w.cached
        tracked = w.tracked

        def after() -> None:
            for replayer in cached:
                self.cache.put(replayer)
            for event, iid, extra in tracked:
                track(event, iid, **extra)

        tx.after_commit(after)
