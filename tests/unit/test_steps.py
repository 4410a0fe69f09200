"""The step builder, fed histories and inbox messages by hand: which events a step adds,
and the rows it writes (history, activities, timers, children, messages, the instance's
new state). No store: a step is built as a worker builds it, and inspected."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

import tenuto
from tenuto import _step
from tenuto import history as h
from tenuto.actions import BY_EVENT, Completed, ContinuedAsNew, Failed, ScheduleActivity
from tenuto.status import Failure, Status

from histories import (
    EXECUTION,
    INSTANCE,
    T0,
    completed,
    execution_started,
    message,
    orchestrator_started,
    raised,
    row,
    scheduled,
    step,
    sub_created,
    timer_created,
    timer_fired,
)

POLICY = tenuto.RetryPolicy(max_attempts=4, first_delay=2)
app = tenuto.App()


@app.activity(retry=POLICY)
def work(x: int) -> int:
    return x


@app.orchestrator
def calls(ctx, n):
    results = yield ctx.when_all([ctx.call_activity(work, i) for i in range(n)])
    ctx.set_custom_status({"sum": sum(results)})
    return sum(results)


@app.orchestrator
def waits(ctx, seconds):
    yield ctx.create_timer(timedelta(seconds=seconds))
    return "woke"


@app.orchestrator
def parent(ctx, _):
    return (yield ctx.call_sub_orchestrator(child, "in", instance_id="kid"))


@app.orchestrator
def child(ctx, value):
    return value


@app.orchestrator
def tells(ctx, target):
    ctx.send_event(target, "hello", [1, 2])
    return (yield ctx.wait_for_event("answer"))


@app.orchestrator
def stops(ctx, _):
    yield ctx.pause("look at this")
    return "resumed"


@app.orchestrator
def pauses_with_work(ctx, _):
    task = ctx.call_activity(work, 1)
    yield ctx.pause("hold the activity")
    return (yield task)


@app.orchestrator
def again(ctx, n):
    if n == 0:
        ctx.continue_as_new(n + 1)
    return (yield ctx.wait_for_event("go"))


@app.orchestrator
def renews(ctx, n):
    yield ctx.create_timer(timedelta(seconds=10))
    ctx.continue_as_new(n + 1)


@app.orchestrator
def breaks(ctx, _):
    raise ValueError("bad input")


# -- the events a step adds ---------------------------------------------------------------


def test_a_first_step_adds_orchestrator_started_then_execution_started():
    ep = step(app, row("calls", "2"), [], [])
    types = [r.event.type for r in ep.history]
    assert types[:2] == [h.ORCHESTRATOR_STARTED, h.EXECUTION_STARTED]
    assert ep.history[1].event.data == {
        "name": "calls",
        "input": 2,
        "generation": 0,
        "parent_instance_id": None,
    }
    assert [r.seq for r in ep.history] == list(range(len(ep.history)))


def test_delivered_messages_follow_in_the_order_they_came_and_duplicates_are_dropped():
    history = [
        orchestrator_started(),
        execution_started("calls", 2),
        scheduled(0, "work", 0),
        scheduled(1, "work", 1),
    ]
    messages = [
        message(12, completed(1, 1), at=T0 + 2),
        message(11, completed(0, 0), at=T0 + 1),
        message(13, completed(0, 0), at=T0 + 3),  # the same result again
        message(14, completed(0, 9), execution_id="older-execution", at=T0),
    ]
    ep = step(app, row("calls"), history, messages, now=T0 + 5)
    added = [r.event for r in ep.history]
    completions = [h.TASK_COMPLETED, h.TASK_COMPLETED]
    assert [e.type for e in added[:3]] == [h.ORCHESTRATOR_STARTED, *completions]
    assert [e.data["task_id"] for e in added[1:3]] == [0, 1]
    assert sorted(ep.consumed) == [11, 12, 13, 14]  # all consumed, two delivered
    assert ep.changes["status"] is Status.COMPLETED and ep.changes["output"] == "1"
    assert ep.changes["custom_status"] == '{"sum":1}'


def test_a_timer_not_due_yet_stays_in_the_inbox():
    history = [orchestrator_started(), execution_started("waits", 60), timer_created(0, T0 + 60)]
    early = step(app, row("waits"), history, [message(5, timer_fired(0, T0 + 60), at=T0 + 60)])
    assert early.consumed == [] and [r.event.type for r in early.history] == [
        h.ORCHESTRATOR_STARTED
    ]
    due = step(
        app, row("waits"), history, [message(5, timer_fired(0, T0 + 60), at=T0 + 60)], T0 + 61
    )
    assert due.consumed == [5] and due.changes["output"] == '"woke"'


def test_an_sdk_step_adds_the_same_events_from_the_history_alone():
    """A Durable Task SDK worker runs the code elsewhere: the step's events are chosen
    from the stored history (the tasks waiting for a result), as tenuto's own are."""
    past = [
        orchestrator_started(),
        execution_started("calls", 2),
        scheduled(0, "work", 0),
        scheduled(1, "work", 1),
        orchestrator_started(),
        completed(1, 1),
    ]
    messages = [message(1, completed(1, 1)), message(2, completed(0, 0)), message(3, raised("x"))]
    events, consumed = _step.new_events(row("calls"), messages, T0, _step.PastHistory(past))
    assert [e.type for e in events] == [h.ORCHESTRATOR_STARTED, h.TASK_COMPLETED, h.EVENT_RAISED]
    assert events[1].data["task_id"] == 0 and consumed == [1, 2, 3]
    first, _ = _step.new_events(row("calls"), [], T0, _step.PastHistory([]))
    assert [e.type for e in first] == [h.ORCHESTRATOR_STARTED, h.EXECUTION_STARTED]


# -- the rows of each action --------------------------------------------------------------


def test_activities_are_queued_with_their_input_and_retry_policy():
    ep = step(app, row("calls", "2"), [], [])
    assert [(a.task_id, a.name, a.input, a.held) for a in ep.activities] == [
        (0, "work", "0", False),
        (1, "work", "1", False),
    ]
    assert json.loads(ep.activities[0].retry) == POLICY.to_json()
    scheduled_events = [r.event for r in ep.history if r.event.type == h.TASK_SCHEDULED]
    assert [e.data for e in scheduled_events] == [
        {"task_id": 0, "name": "work", "input": 0},
        {"task_id": 1, "name": "work", "input": 1},
    ]
    assert ep.changes["status"] is Status.RUNNING and ep.changes["started_at"] == T0
    assert ep.changes["history_len"] == 4 and ep.changes["lease"] is None
    assert ep.replayer is not None  # kept in memory once written


def test_a_timer_is_a_message_to_itself_due_at_its_time():
    ep = step(app, row("waits", "30"), [], [])
    (timer,) = ep.messages
    assert (timer.instance_id, timer.execution_id, timer.visible_at) == (
        INSTANCE,
        EXECUTION,
        T0 + 30,
    )
    assert timer.event.type == h.TIMER_FIRED and timer.event.data == {
        "task_id": 0,
        "fire_at": T0 + 30,
    }


def test_a_sub_orchestration_is_a_new_pending_instance_that_names_its_parent():
    ep = step(app, row("parent"), [], [])
    (kid,) = ep.children
    assert (kid.instance_id, kid.name, kid.status, kid.input) == (
        "kid",
        "child",
        Status.PENDING,
        '"in"',
    )
    assert (kid.parent_instance_id, kid.parent_execution_id, kid.parent_task_id) == (
        INSTANCE,
        EXECUTION,
        0,
    )
    assert kid.next_due == T0 and kid.execution_id != EXECUTION


def test_a_sent_event_goes_to_the_other_instance_and_the_history_records_it():
    ep = step(app, row("tells", '"other"'), [], [])
    (sent,) = ep.sent
    assert (sent.instance_id, sent.execution_id) == ("other", None)
    assert sent.event.type == h.EVENT_RAISED and sent.event.data == {
        "name": "hello",
        "data": [1, 2],
    }
    recorded = [r.event for r in ep.history if r.event.type == h.EVENT_SENT]
    assert recorded[0].data == {
        "task_id": 0,
        "instance_id": "other",
        "name": "hello",
        "data": [1, 2],
    }


def test_a_self_pause_pauses_the_instance_and_holds_what_the_step_scheduled():
    ep = step(app, row("stops"), [], [])
    assert ep.changes["status"] is Status.PAUSED and ep.changes["next_due"] is None
    assert ep.changes["pause_reason"] == "look at this"
    assert ep.changes["pause_source"] == "orchestration"
    held = step(app, row("pauses_with_work"), [], [])
    assert [a.held for a in held.activities] == [True]
    assert ("paused", {"reason": "hold the activity", "by": "orchestration",
            "source": "orchestration"}) in held.tracked  # fmt: skip


def test_an_action_no_step_knows_is_refused_not_taken_for_a_pause():
    class Unknown(ScheduleActivity):
        pass

    decision = _step.Decision(row("calls"), T0, [], [], [Unknown(0, "work", 1, None)], None)
    with pytest.raises(TypeError, match="cannot carry out the action"):
        _step.build(decision)


def test_every_action_says_which_event_records_it_and_what_it_does():
    for event_type, kind in BY_EVENT.items():
        assert event_type == kind.EVENT
    action = ScheduleActivity(3, "work", {"x": 1}, None)
    event = action.event(T0)
    assert (event.type, event.data) == (
        h.TASK_SCHEDULED,
        {"task_id": 3, "name": "work", "input": {"x": 1}},
    )
    assert action.describe() == BY_EVENT[event.type].described(event.data)
    created = sub_created(1, "child", "kid")
    assert BY_EVENT[created.type].described(created.data) == "calls sub-orchestrator 'child'"


# -- how an execution ends ----------------------------------------------------------------


def test_a_completed_child_tells_its_parent():
    child_row = row(
        "child",
        '"v"',
        parent_instance_id="mom",
        parent_execution_id="mom-exec",
        parent_task_id=4,
    )
    ep = step(app, child_row, [], [])
    assert ep.finished and ep.changes["status"] is Status.COMPLETED
    assert ep.changes["completed_at"] == T0 and ep.changes["next_due"] is None
    assert ep.history[-1].event.data == {"status": "COMPLETED", "result": "v"}
    (note,) = ep.messages
    assert (note.instance_id, note.execution_id) == ("mom", "mom-exec")
    assert note.event.type == h.SUB_COMPLETED and note.event.data == {"task_id": 4, "result": "v"}
    assert ep.wake_parent and ep.replayer is None


def test_code_that_raises_fails_the_instance_with_its_error():
    ep = step(app, row("breaks"), [], [])
    assert ep.finished and ep.changes["status"] is Status.FAILED
    failure = json.loads(ep.changes["failure"])
    assert failure["type"] == "ValueError" and failure["message"] == "bad input"
    assert ep.history[-1].event.type == h.EXECUTION_COMPLETED
    assert ep.tracked[0][0] == "failed"


def test_continue_as_new_starts_a_new_execution_and_carries_the_events_over():
    ep = step(app, row("again", "0"), [], [])
    assert ep.restarted and ep.history == []
    assert ep.changes["input"] == "1" and ep.changes["generation"] == 1
    assert ep.changes["execution_id"] != EXECUTION and ep.changes["history_len"] == 0
    history = [orchestrator_started(), execution_started("renews", 0), timer_created(0, T0 + 10)]
    messages = [
        message(1, raised("go", "first", ts=T0 + 2), at=T0 + 2),
        message(2, timer_fired(0, T0 + 10), at=T0 + 10),
        message(3, raised("go", "second", ts=T0 + 11), at=T0 + 11),  # after continue_as_new
    ]
    ep = step(app, row("renews", "0"), history, messages, now=T0 + 12)
    assert ep.restarted and ep.consumed == [1, 2, 3]
    carried = [(m.event.data["data"], m.visible_at) for m in ep.messages]
    # Queued as raised when the first of them was: before anything raised meanwhile.
    assert carried == [("first", T0 + 2), ("second", T0 + 2)]


def test_a_step_claimed_too_often_is_abandoned():
    stuck = row("calls", claims=_step.MAX_CLAIMS + 1)
    ep = step(app, stuck, [], [])
    failure = json.loads(ep.changes["failure"])
    assert failure["type"] == "tenuto.StepAbandoned"
    assert f"claimed {_step.MAX_CLAIMS} times without completing" in failure["message"]
    assert "its code crashes the worker or never yields" in failure["message"]
    sdk = _step.abandoned(stuck, T0, "the SDK worker never answers")
    assert json.loads(sdk.changes["failure"])["message"].endswith("the SDK worker never answers")


def test_build_turns_each_outcome_into_its_writes():
    decided = _step.Decision(row("calls"), T0, [orchestrator_started()], [7], [], None)
    assert _step.build(decided).changes["status"] is Status.RUNNING
    decided.outcome = Completed(3)
    assert _step.build(decided).changes["output"] == "3"
    decided.outcome = Failed(Failure("X", "y"))
    assert _step.build(decided).changes["status"] is Status.FAILED
    decided.outcome = ContinuedAsNew(5, (("e", 1),))
    renewed = _step.build(decided)
    assert renewed.restarted and renewed.consumed == [7] and len(renewed.messages) == 1
