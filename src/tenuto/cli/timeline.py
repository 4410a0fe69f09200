"""An instance's history as a readable timeline: one line per event, saying what it
means, with pause periods marked by a bar (┏ ┃ ┗) and shaded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..actions import BY_EVENT
from ..status import HistoryEvent
from .render import (
    PAUSE_STYLE,
    duration_text,
    print_rich,
    seconds_since,
    short,
    table,
    text,
    time_text,
    value_text,
)

#: Who paused an instance, by the ``source`` of its ExecutionSuspended event.
_PAUSED_BY = {
    "orchestration": "itself",
    "parent": "with its parent, by {by}",
    "orchestrator": "with its orchestrator (standing pause), by {by}",
    "nondeterminism": "by {by}, its code no longer matching its history",
    "failure": "by {by}, a call having failed its last attempt",
}


def show_history(events: Sequence[HistoryEvent], verbose: bool) -> None:
    """The timeline; ``verbose`` also shows each orchestrator step."""
    result = table()
    result.add_column("", no_wrap=True)
    result.add_column("#", justify="right", style="dim")
    result.add_column("Time", no_wrap=True)
    result.add_column("Event", no_wrap=True)
    result.add_column("Details")
    tasks: dict[Any, str] = {}
    paused_since: datetime | None = None
    for event in events:
        details = describe(event, tasks)
        if event.type == "OrchestratorStarted" and not verbose:
            continue
        mark, style = "", ""
        if event.type == "ExecutionSuspended" and paused_since is None:
            paused_since, mark, style = event.timestamp, "┏", PAUSE_STYLE
        elif paused_since is not None and event.type in ("ExecutionResumed", "ExecutionTerminated"):
            held = (event.timestamp - paused_since).total_seconds()
            details += f" (paused for {duration_text(held)})"
            paused_since, mark, style = None, "┗", PAUSE_STYLE
        elif paused_since is not None:
            mark, style = "┃", PAUSE_STYLE
        result.add_row(
            text(mark, PAUSE_STYLE),
            text(event.sequence),
            text(time_text(event.timestamp, ms=True)),
            text(event.type, style or "bold"),
            text(details),
            style=style,
        )
    if paused_since is not None:
        result.add_row(
            text("┃", PAUSE_STYLE),
            text(""),
            text(""),
            text("(paused)", PAUSE_STYLE),
            text(f"still paused, for {duration_text(seconds_since(paused_since))}", PAUSE_STYLE),
        )
    print_rich(result)


def describe(event: HistoryEvent, tasks: dict[Any, str]) -> str:
    """One line of what an event says. ``tasks`` maps task ids to what they are (filled
    in from the events that schedule them), to name the task that a result belongs to."""
    d, kind = event.data, event.type
    task = tasks.get(d.get("task_id"), f"task {d.get('task_id')}")
    if kind == "ExecutionStarted":
        line = f"{d.get('name')}({value_text(d.get('input'), 60)})"
        if d.get("generation"):
            line += f", generation {d['generation']}"
        if d.get("parent_instance_id"):
            line += f", child of {d['parent_instance_id']}"
        return line
    if kind == "TaskScheduled":
        tasks[d.get("task_id")] = str(d.get("name"))
        return f"activity {d.get('name')}({value_text(d.get('input'), 60)})"
    if kind in ("TaskCompleted", "SubOrchestrationInstanceCompleted"):
        return f"{task} → {value_text(d.get('result'))}"
    if kind in ("TaskFailed", "SubOrchestrationInstanceFailed"):
        attempts = d.get("attempts")
        tries = f" after {attempts} attempts" if attempts and attempts > 1 else ""
        return f"{task} failed{tries}: {short(_failure(d.get('failure')), 100)}"
    if kind == "TimerCreated":
        tasks[d.get("task_id")] = "timer"
        return f"timer due at {_iso(d.get('fire_at'))}"
    if kind == "TimerFired":
        return f"timer due at {_iso(d.get('fire_at'))} fired"
    if kind == "SubOrchestrationInstanceCreated":
        tasks[d.get("task_id")] = f"sub-orchestration {d.get('name')}"
        input_ = value_text(d.get("input"), 60)
        return f"{d.get('name')}({input_}) as instance {d.get('instance_id')}"
    if kind == "EventRaised":
        return f"{d.get('name')} = {value_text(d.get('data'))}"
    if kind == "ExecutionSuspended" and d.get("rescheduled"):
        return f"scheduled resume set to {_iso(d.get('resume_at'))} by {d.get('by')}" + _reason(d)
    if kind == "ExecutionSuspended":
        who = _PAUSED_BY.get(str(d.get("source")), "by {by}").format(by=d.get("by"))
        line = f"paused {who}" + _reason(d)
        if d.get("resume_at"):
            line += f" (resumes at {_iso(d['resume_at'])})"
        return line
    if kind == "ExecutionResumed":
        delivered = ", the failure delivered to the code" if d.get("deliver_failure") else ""
        return f"resumed by {d.get('by')}{delivered}" + _reason(d)
    if kind == "ExecutionRestarted":
        return f"restarted from {d.get('restarted_from')} by {d.get('by')}" + _reason(d)
    if kind == "PatchMarker":
        return f"took the new path of patch {d.get('patch')!r}"
    if kind == "ActivityHeld":
        by = f" of {d['by']}" if d.get("by") else ""
        return f"activity {d.get('activity')} held by a standing pause{by}" + _reason(d)
    if kind == "ActivityReleased":
        by = f" by {d['by']}" if d.get("by") else ""
        return f"activity {d.get('activity')} released{by}" + _reason(d)
    if kind == "ExecutionTerminated":
        return f"terminated by {d.get('by')}" + _reason(d)
    if kind == "ExecutionRewound":
        return f"rewound by {d.get('by')}" + _reason(d)
    if kind == "Rewound":
        return f"{d.get('event')} {task}, forgotten by a rewind"
    if kind == "ExecutionCompleted":
        if d.get("status") == "FAILED":
            return f"FAILED: {short(_failure(d.get('failure')), 100)}"
        return f"{d.get('status', 'COMPLETED')} → {value_text(d.get('result'))}"
    if kind == "ContinuedAsNew":
        return f"new input {value_text(d.get('input'))}"
    action = BY_EVENT.get(kind)  # another action the code takes: as it describes itself
    if action is not None:
        return action.described(d)
    return value_text(d) if d else ""


def _reason(data: dict[str, Any]) -> str:
    return f": {data['reason']}" if data.get("reason") else ""


def _failure(failure: Any) -> str:
    if isinstance(failure, dict):
        return f"{failure.get('type')}: {failure.get('message')}"
    return str(failure)


def _iso(value: Any) -> str:
    try:
        return time_text(datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)
