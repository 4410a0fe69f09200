"""Histories written by hand, for the unit tests of the engine (no store, no worker).

As in durabletask-python's orchestration-executor tests: a test writes the events an
instance's history holds, feeds them to the replayer or the step builder, and checks
the actions the code takes, how the execution ends, and the rows the step writes.
"""

from __future__ import annotations

from typing import Any

from tenuto import history as h
from tenuto._runner import Claimed, ReplayCache, StepRunner
from tenuto._step import Step
from tenuto.app import App
from tenuto.replay import Replayer
from tenuto.status import Failure, Status
from tenuto.store.base import InstanceRow

#: The time of the first step (epoch seconds), and of each later one.
T0 = 1_700_000_000.0
INSTANCE = "unit-1"
EXECUTION = "exec-1"


def orchestrator_started(ts: float = T0) -> h.Event:
    return h.Event(h.ORCHESTRATOR_STARTED, ts)


def execution_started(name: str, input: Any = None, ts: float = T0) -> h.Event:
    data = {"name": name, "input": input, "generation": 0, "parent_instance_id": None}
    return h.Event(h.EXECUTION_STARTED, ts, data)


def scheduled(task_id: int, name: str, input: Any = None) -> h.Event:
    return h.Event(h.TASK_SCHEDULED, T0, {"task_id": task_id, "name": name, "input": input})


def completed(task_id: int, result: Any = None) -> h.Event:
    return h.Event(h.TASK_COMPLETED, T0, {"task_id": task_id, "result": result})


def failed(task_id: int, message: str = "boom", attempts: int = 1) -> h.Event:
    failure = Failure("builtins.RuntimeError", message).to_json()
    return h.Event(
        h.TASK_FAILED, T0, {"task_id": task_id, "failure": failure, "attempts": attempts}
    )


def timer_created(task_id: int, fire_at: float) -> h.Event:
    return h.Event(h.TIMER_CREATED, T0, {"task_id": task_id, "fire_at": fire_at})


def timer_fired(task_id: int, fire_at: float) -> h.Event:
    return h.Event(h.TIMER_FIRED, fire_at, {"task_id": task_id, "fire_at": fire_at})


def sub_created(task_id: int, name: str, instance_id: str, input: Any = None) -> h.Event:
    data = {"task_id": task_id, "name": name, "instance_id": instance_id, "input": input}
    return h.Event(h.SUB_CREATED, T0, data)


def sub_completed(task_id: int, result: Any = None) -> h.Event:
    return h.Event(h.SUB_COMPLETED, T0, {"task_id": task_id, "result": result})


def sub_failed(task_id: int, message: str = "child failed") -> h.Event:
    failure = Failure("builtins.ValueError", message).to_json()
    return h.Event(h.SUB_FAILED, T0, {"task_id": task_id, "failure": failure})


def raised(name: str, data: Any = None, ts: float = T0) -> h.Event:
    return h.Event(h.EVENT_RAISED, ts, {"name": name, "data": data})


def paused_itself(task_id: int, reason: str | None) -> h.Event:
    data = {
        "task_id": task_id,
        "reason": reason,
        "by": "orchestration",
        "source": "orchestration",
        "resume_at": None,
    }
    return h.Event(h.EXECUTION_SUSPENDED, T0, data)


def resumed(ts: float = T0) -> h.Event:
    return h.Event(h.EXECUTION_RESUMED, ts, {"reason": None, "by": "ops"})


def replay(app: App, name: str, *events: h.Event, new: tuple[h.Event, ...] = ()) -> Replayer:
    """A replayer of orchestrator ``name`` that has replayed ``events`` (the stored
    history), then received ``new`` (what a step adds)."""
    replayer = Replayer(app, app.get_orchestrator(name), INSTANCE, EXECUTION)
    replayer.replay(events)
    for event in new:
        replayer.receive(event)
    return replayer


def row(name: str, input: str | None = "null", **fields: Any) -> InstanceRow:
    """The instance row of a step, leased as a claim leaves it."""
    defaults: dict[str, Any] = {
        "status": Status.RUNNING,
        "execution_id": EXECUTION,
        "input": input,
        "created_at": T0,
        "updated_at": T0,
        "lease": "unit:1",
        "next_due": T0,
    }
    return InstanceRow(instance_id=INSTANCE, name=name, **{**defaults, **fields})


def message(
    id: int, event: h.Event, execution_id: str | None = EXECUTION, at: float = T0
) -> h.Message:
    return h.Message(id, INSTANCE, execution_id, event, at)


class FixedClock:
    """A clock that reads ``now`` (tests move it)."""

    def __init__(self, now: float) -> None:
        self.now_value = now

    def now(self) -> float:
        return self.now_value


def step(
    app: App,
    instance: InstanceRow,
    history: list[h.Event],
    messages: list[h.Message],
    now: float = T0,
) -> Step:
    """One step as a worker runs it, after the claim: replay ``history``, add the due
    ``messages``, run the code, build what it writes (no store)."""
    runner = StepRunner(app, ReplayCache(0), FixedClock(now))
    instance.history_len = len(history)
    return runner.run(Claimed(instance, messages, history, None))
