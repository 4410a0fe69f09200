"""Failures that pause: a call whose last attempt failed, under
``RetryPolicy(on_exhausted="pause")`` (or the app's default, ``App(on_exhausted=...)``).

An activity's failure is queued for the orchestration as any result is, and in the
same transaction the instance is paused (:func:`pause_on_failures`: ``pause.source ==
"failure"``, the error in the pause reason, the call's details in the pause record of
its history), so its code does not see it. A sub-orchestration's failure reaches its
parent as a message too; the parent's step that finds it pauses the parent instead of
running the code (``Replayer.failure_to_hold``). What the resume does with it:

* a plain resume (:func:`run_again`) drops the queued failure and runs the call again:
  an activity is queued again with a fresh attempt budget, a child is rewound (only
  what failed in it runs again). The code never knows;
* ``resume(..., deliver_failure=True)`` leaves the failure queued: the next step hands
  it to the code, whose own error handling runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from . import history as h
from ._checks import MAX_REASON
from ._json import dumps, loads
from .app import App
from .retry import RetryPolicy
from .status import PAUSABLE, Failure, Status
from .store.base import ActivityRow, InstanceRow, NewActivity, Tx
from .tracking import track

#: ``pause.source`` of an instance paused by a call that failed its last attempt.
FAILURE = "failure"


def policy_for(app: App, policy: RetryPolicy | None) -> RetryPolicy | None:
    """The policy a call runs under: its own (or its activity's), with the app's
    ``on_exhausted`` where the policy does not say."""
    if app.on_exhausted != "pause" or (policy is not None and policy.on_exhausted is not None):
        return policy
    if policy is None:
        return RetryPolicy(max_attempts=1, on_exhausted="pause")
    return dataclasses.replace(policy, on_exhausted="pause")


def pauses(retry: str | None) -> bool:
    """Whether a call with the stored policy ``retry`` pauses when its last attempt fails."""
    return retry is not None and loads(retry).get("on_exhausted") == "pause"


def pause_on_failures(tx: Tx, failed: Sequence[tuple[ActivityRow, Failure]], now: float) -> None:
    """Pause the instances whose calls ``failed`` their last attempt (their failures are
    queued in this transaction). An instance paused already (by a client, its parent...)
    is now paused by the failure: only an explicit resume ends it."""
    ids = sorted({a.instance_id for a, _ in failed})
    rows = {r.instance_id: r for r in tx.lock_instances(ids)}
    for activity, failure in failed:
        row = rows.get(activity.instance_id)
        if row is None or row.status.is_terminal or row.execution_id != activity.execution_id:
            continue
        times = "once" if activity.attempt == 1 else f"{activity.attempt} times"
        error = f"{failure.type}: {failure.message}"
        reason = f"activity {activity.name!r} failed {times}: {error}"[:MAX_REASON]
        changes: dict[str, Any] = {
            "pause_reason": reason,
            "pause_by": "tenuto",
            "pause_since": now,
            "pause_resume_at": None,
            "pause_source": FAILURE,
            "updated_at": now,
        }
        if row.status in PAUSABLE:
            # As any pause: a step under way is discarded when it commits.
            changes.update(
                status=Status.PAUSED, next_due=None, lease=None, lease_until=None, claims=0
            )
        tx.update_instances([row.instance_id], changes)
        tx.hold_activities([row.instance_id])
        failed_call = {
            "task_id": activity.task_id,
            "activity": activity.name,
            "attempts": activity.attempt,
            "retry": None if activity.retry is None else loads(activity.retry),
            "failure": failure.to_json(),
        }
        data = {"reason": reason, "by": "tenuto", "source": FAILURE, "resume_at": None}
        tx.annotate(
            [row.instance_id], h.Event(h.EXECUTION_SUSPENDED, now, {**data, "failed": failed_call})
        )
        _track(tx, "paused", row.instance_id, reason=reason, by="tenuto", source=FAILURE)


def sub_failure_reason(failed: dict[str, Any]) -> str:
    """The pause reason of a failed sub-orchestration (see ``Replayer.failure_to_hold``)."""
    failure = Failure.from_json(failed["failure"])
    child = f"sub-orchestration {failed['sub_orchestration']!r} ({failed['instance_id']})"
    return f"{child} failed: {failure.type}: {failure.message}"[:MAX_REASON]


def run_again(tx: Tx, rows: Sequence[InstanceRow], now: float) -> list[str]:
    """For instances paused by failed calls, being resumed: drop each queued failure and
    queue its call again, held (the resume releases it), with a fresh attempt budget.
    Returns the failed sub-orchestrations to rewind (the caller does: their new result
    comes as the first one did)."""
    inboxes = tx.inbox_of([r.instance_id for r in rows])
    children: list[str] = []
    for row in rows:
        history = tx.load_history(row.instance_id)
        calls = _failed_since_resume(history)
        if not calls:
            continue
        scheduled = {e.data.get("task_id"): e.data for e in history if e.type == h.TASK_SCHEDULED}
        failures = {
            (m.event.type, m.event.data.get("task_id")): m.id
            for m in inboxes.get(row.instance_id, [])
            if m.event.type in (h.TASK_FAILED, h.SUB_FAILED) and m.execution_id == row.execution_id
        }
        subs = [
            c
            for c in calls
            if "sub_orchestration" in c and (h.SUB_FAILED, c["task_id"]) in failures
        ]
        if subs:
            tx.delete_messages([failures[(h.SUB_FAILED, c["task_id"])] for c in subs])
            children += [c["instance_id"] for c in subs]
        again = [
            c
            for c in calls
            if "activity" in c
            and (h.TASK_FAILED, c["task_id"]) in failures
            and c["task_id"] in scheduled
        ]
        if not again:
            continue
        tx.delete_messages([failures[(h.TASK_FAILED, c["task_id"])] for c in again])
        tx.insert_activities(
            NewActivity(
                row.instance_id,
                row.execution_id,
                c["task_id"],
                c["activity"],
                dumps(scheduled[c["task_id"]].get("input")),
                None if c.get("retry") is None else dumps(c["retry"]),
                now,
                held=True,
                trace_parent=row.trace_parent,
            )
            for c in again
        )
        for c in again:
            _track(tx, "failure_retried", row.instance_id, activity=c["activity"])
    return children


def _failed_since_resume(history: Sequence[h.Event]) -> list[dict[str, Any]]:
    """The failed calls recorded by the pauses since the instance was last resumed."""
    calls: list[dict[str, Any]] = []
    for event in reversed(history):
        if event.type == h.EXECUTION_RESUMED:
            break
        if event.type == h.EXECUTION_SUSPENDED and event.data.get("failed"):
            calls.append(event.data["failed"])
    return calls[::-1]


def _track(tx: Tx, event: str, instance_id: str, **fields: Any) -> None:
    tx.after_commit(lambda: track(event, instance_id, **fields))
