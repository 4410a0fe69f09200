"""Schedule operations, each inside the caller's transaction: create, update, delete,
pause and resume (a standing pause of kind ``"schedule"``), trigger, backfill, and the
firing that workers do.

Exactly once per fire time: firing locks the schedule's row (rows another worker holds
are skipped), starts the run of each due fire time, and moves ``next_fire`` past them,
all in one transaction. A crash before the commit leaves the fire time due; after it,
done. The run's id is derived from the fire time, so not even a backfill or a trigger
can start a fire time twice.

Which fire times are due: those from ``next_fire`` up to now that are at most
``catchup_window`` old. Fire times that came while the schedule was paused, or while no
worker ran, and are older than that are skipped (not queued).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import _control
from ._control import track_each
from ._json import dumps
from .app import App
from .errors import ValidationError
from .schedules import MAX_BACKFILL, ScheduleExists, ScheduleNotFound, ScheduleSpec, run_id
from .status import LIVE, Status
from .store.base import Tx
from .store.flow import ScheduleRow

#: The kind of a schedule's standing pause.
SCHEDULE = "schedule"
#: The actor recorded on what the workers do for schedules.
BY = "schedule"
#: Most fire times handled per schedule in one transaction (the rest in the next).
MAX_PER_FIRING = 100


@dataclass(slots=True)
class _State:
    """What firing changes on a schedule, written back once."""

    row: ScheduleRow
    spec: ScheduleSpec
    started: list[str]

    def changes(self) -> dict[str, Any]:
        return {
            "last_run": self.row.last_run,
            "buffered": self.row.buffered,
            "watch_run": self.row.watch_run,
            "next_fire": self.row.next_fire,
        }


def lock_one(tx: Tx, schedule_id: str) -> ScheduleRow:
    rows = tx.lock_schedules([schedule_id])
    if not rows:
        raise ScheduleNotFound(schedule_id)
    return rows[0]


def create(
    tx: Tx,
    schedule_id: str,
    orchestrator: str,
    input_json: str,
    spec: ScheduleSpec,
    *,
    now: float,
    replace: bool = False,
) -> bool:
    """Create a schedule, or with ``replace`` update the one with this id (its runs
    and pause stay). Returns whether it is new."""
    row = ScheduleRow(
        schedule_id,
        orchestrator,
        input_json,
        spec.to_json(),
        spec.next_after(now),
        None,
        None,
        None,
        now,
        now,
    )
    if tx.insert_schedule(row):
        track_each(tx, "schedule_created", [schedule_id], orchestrator=orchestrator)
        tx.wake()
        return True
    if not replace:
        raise ScheduleExists(schedule_id)
    update(tx, schedule_id, orchestrator, input_json, spec, now=now)
    return False


def update(
    tx: Tx,
    schedule_id: str,
    orchestrator: str,
    input_json: str,
    spec: ScheduleSpec,
    *,
    now: float,
) -> None:
    """Replace a schedule's orchestrator, input and spec; its next fire time is the
    new spec's first one after now."""
    row = lock_one(tx, schedule_id)
    text = spec.to_json()
    if (row.orchestrator, row.input, row.spec) == (orchestrator, input_json, text):
        return  # unchanged (a worker declaring it again at start): keep its fire times
    changes: dict[str, Any] = {
        "orchestrator": orchestrator,
        "input": input_json,
        "spec": text,
        "updated_at": now,
    }
    if text != row.spec:
        changes["next_fire"] = spec.next_after(now)
    tx.update_schedule(schedule_id, changes)
    track_each(tx, "schedule_updated", [schedule_id], orchestrator=orchestrator)
    tx.wake()


def delete(tx: Tx, schedule_id: str) -> None:
    """Delete a schedule and its pause (its runs stay, as ordinary instances)."""
    if not tx.delete_schedule(schedule_id):
        raise ScheduleNotFound(schedule_id)
    tx.delete_standing_pause(SCHEDULE, schedule_id)
    track_each(tx, "schedule_deleted", [schedule_id])


def pause(
    tx: Tx,
    ids: Sequence[str],
    *,
    reason: str | None,
    by: str | None,
    resume_at: float | None,
    now: float,
    strict: bool = False,
) -> list[str]:
    """Pause schedules (a standing pause each: no new runs until resumed, by a call or
    at ``resume_at``); returns those that were not paused already."""
    rows = tx.lock_schedules(ids)
    if strict and not rows:
        raise ScheduleNotFound(ids[0])
    return [
        r.schedule_id
        for r in rows
        if _control.pause_type(
            tx, SCHEDULE, r.schedule_id, reason=reason, by=by, resume_at=resume_at, now=now
        )
    ]


def resume(
    tx: Tx,
    ids: Sequence[str],
    *,
    reason: str | None,
    by: str | None,
    now: float,
    strict: bool = False,
) -> list[str]:
    """End the pauses of schedules; returns those that were paused. Fire times missed
    meanwhile are handled by the next firing, per ``catchup_window``."""
    rows = tx.lock_schedules(ids)
    if strict and not rows:
        raise ScheduleNotFound(ids[0])
    done = [
        r.schedule_id
        for r in rows
        if _control.resume_type(tx, SCHEDULE, r.schedule_id, reason=reason, by=by, now=now)
    ]
    if done:
        tx.wake()
    return done


def trigger(tx: Tx, schedule_id: str, *, now: float, overlap: str | None = None) -> str | None:
    """Start a run now (paused or not), as at a fire time of now, by the schedule's
    overlap policy (or ``overlap``). Returns its id, or ``None`` if the policy skipped
    or buffered it."""
    row = lock_one(tx, schedule_id)
    state = _State(row, ScheduleSpec.from_json(row.spec), [])
    _fire(tx, state, now, now, overlap or state.spec.overlap, jitter=False)
    tx.update_schedule(schedule_id, {**state.changes(), "updated_at": now})
    return state.started[0] if state.started else None


def backfill(tx: Tx, schedule_id: str, start: float, end: float, *, now: float) -> list[str]:
    """Start the runs of the fire times from ``start`` up to ``end`` (both included),
    whether they ran or not: the fire times that have a run already are left alone (a
    run's id is its fire time). Every run starts (``allow_all``). Returns the ids
    started, oldest first."""
    row = lock_one(tx, schedule_id)
    spec = ScheduleSpec.from_json(row.spec)
    times = []
    for at in spec.fires(start - 1e-6, end):
        times.append(at)
        if len(times) > MAX_BACKFILL:
            raise ValidationError(
                f"a backfill starts at most {MAX_BACKFILL} runs; this range has more: "
                "split it into smaller ranges"
            )
    state = _State(row, spec, [])
    for at in times:
        _start_run(tx, state, at, now, jitter=False)
    if state.started:
        tx.update_schedule(schedule_id, {**state.changes(), "updated_at": now})
    return state.started


def fire_due(tx: Tx, now: float, limit: int = 50) -> list[str]:
    """Fire what is due: for each schedule not paused, the runs of its fire times due
    (per ``catchup_window`` and ``overlap``) and its buffered run once the latest run
    has finished; then pause the schedules whose watched run failed
    (``pause_on_failure``). Returns the ids of the runs started."""
    started: list[str] = []
    for row in tx.due_schedules(now, limit):
        state = _State(row, ScheduleSpec.from_json(row.spec), started)
        if row.buffered is not None and not _latest_live(tx, row):
            at, row.buffered = row.buffered, None
            _start_run(tx, state, at, now, jitter=True)
        if row.next_fire is not None and row.next_fire <= now:
            oldest = max(row.next_fire, now - state.spec.catchup_window)
            times = list(itertools.islice(state.spec.fires(oldest - 1e-6, now), MAX_PER_FIRING))
            for at in times:
                _fire(tx, state, at, now, state.spec.overlap, jitter=True)
            full = len(times) == MAX_PER_FIRING
            row.next_fire = state.spec.next_after(times[-1] if full else now)
        tx.update_schedule(row.schedule_id, state.changes())
    _watch_failures(tx, now)
    return started


def _latest_live(tx: Tx, row: ScheduleRow) -> bool:
    """Whether the schedule's latest run is unfinished."""
    if row.last_run is None:
        return False
    status = tx.statuses([row.last_run]).get(row.last_run)
    return status is not None and status in LIVE


def _fire(tx: Tx, state: _State, at: float, now: float, overlap: str, *, jitter: bool) -> None:
    """Handle fire time ``at`` by the overlap policy."""
    row = state.row
    if _latest_live(tx, row):
        if overlap == "skip":
            track_each(tx, "schedule_skipped", [row.schedule_id], fire_time=at, overlap=overlap)
            return
        if overlap == "buffer_one":
            if row.buffered is None:
                row.buffered = at
            else:
                track_each(tx, "schedule_skipped", [row.schedule_id], fire_time=at, overlap=overlap)
            return
        if overlap == "terminate_previous":
            assert row.last_run is not None
            _control.terminate(
                tx,
                [row.last_run],
                reason=f"schedule {row.schedule_id}: a new run started (terminate_previous)",
                by=BY,
                now=now,
            )
    _start_run(tx, state, at, now, jitter=jitter)


def _start_run(tx: Tx, state: _State, at: float, now: float, *, jitter: bool) -> None:
    """Start the run of fire time ``at`` unless it exists (a standing pause of the
    orchestrator holds it PAUSED, like any start)."""
    row = state.row
    iid = run_id(row.schedule_id, at)
    if tx.statuses([iid]):
        return
    delay = state.spec.jitter_for(row.schedule_id, at) if jitter else 0.0
    _control.start(
        tx,
        name=row.orchestrator,
        inputs=[(iid, row.input or "null")],
        start_at=at + delay if delay and at + delay > now else None,
        now=now,
        tags={"schedule": row.schedule_id},
    )
    row.last_run = iid
    if state.spec.pause_on_failure:
        row.watch_run = iid
    state.started.append(iid)
    track_each(tx, "schedule_fired", [iid], schedule=row.schedule_id, fire_time=at)


def _watch_failures(tx: Tx, now: float) -> None:
    """``pause_on_failure``: pause the schedules whose watched run failed; stop
    watching runs that finished otherwise."""
    for schedule_id, run, status in tx.finished_watched_runs():
        if status is Status.FAILED:
            _control.pause_type(
                tx,
                SCHEDULE,
                schedule_id,
                reason=f"run {run} failed (pause_on_failure)",
                by=BY,
                resume_at=None,
                now=now,
            )
        tx.update_schedule(schedule_id, {"watch_run": None})


def declare(tx: Tx, app: App, now: float) -> None:
    """Create or update the schedules ``app`` declares (``@app.schedule``)."""
    for declared in app.schedules:
        spec = ScheduleSpec.of(**declared.options)
        text = dumps(declared.input, f"the input of schedule {declared.schedule_id!r}")
        create(tx, declared.schedule_id, declared.orchestrator, text, spec, now=now, replace=True)
