"""The replayer, fed histories by hand: what the code does at each point of its history.

No store and no worker: each test writes the history an instance would have, replays it
and checks the actions the code takes now and how the execution ends.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

import tenuto
from tenuto import history as h
from tenuto.actions import (
    Completed,
    ContinuedAsNew,
    CreateSubOrchestration,
    CreateTimer,
    Failed,
    PauseSelf,
    ScheduleActivity,
    SendEvent,
)

from histories import (
    INSTANCE,
    T0,
    completed,
    execution_started,
    failed,
    orchestrator_started,
    paused_itself,
    raised,
    replay,
    resumed,
    scheduled,
    sub_completed,
    sub_created,
    sub_failed,
    timer_created,
    timer_fired,
)

app = tenuto.App()
POLICY = tenuto.RetryPolicy(max_attempts=3, first_delay=0.5)


@app.activity
def greet(name: str) -> str:
    return f"hello {name}"


@app.activity(retry=POLICY)
def flaky(n: int) -> int:
    return n


@app.orchestrator
def sequence(ctx, names):
    out = []
    for name in names:
        out.append((yield ctx.call_activity(greet, name)))
        ctx.set_custom_status({"done": len(out)})
    return out


@app.orchestrator
def survives_failure(ctx, _):
    try:
        yield ctx.call_activity(flaky, 1)
    except tenuto.ActivityFailed as exc:
        return {"caught": exc.failure.message, "attempts": exc.attempts}
    return "no failure"


@app.orchestrator
def retried(ctx, _):
    return (yield ctx.call_activity(flaky, 2, retry=tenuto.RetryPolicy(max_attempts=7)))


@app.orchestrator
def sleeps(ctx, seconds):
    before = ctx.now()
    yield ctx.create_timer(timedelta(seconds=seconds))
    return (ctx.now() - before).total_seconds()


@app.orchestrator
def approvals(ctx, _):
    first = yield ctx.wait_for_event("approve")
    second = yield ctx.wait_for_event("approve")
    return [first, second]


@app.orchestrator
def impatient(ctx, _):
    try:
        return (yield ctx.wait_for_event("approve", timeout=60))
    except tenuto.EventTimeout:
        return "timed out"


@app.orchestrator
def parent(ctx, value):
    a = yield ctx.call_sub_orchestrator(child, value)
    b = yield ctx.call_sub_orchestrator(child, value, instance_id="explicit-child")
    return [a, b]


@app.orchestrator
def child(ctx, value):
    return value


@app.orchestrator
def loops(ctx, n):  # a plain function: it never waits
    if n >= 3:
        return n
    ctx.continue_as_new(n + 1)


@app.orchestrator
def careful(ctx, _):
    yield ctx.pause("check the input")
    return (yield ctx.call_activity(greet, "after the pause"))


@app.orchestrator
def notifies(ctx, target):
    ctx.send_event(target, "ready", {"from": ctx.instance_id})
    return (yield ctx.call_activity(greet, "sent"))


@app.orchestrator
def says_goodbye(ctx, target):
    ctx.send_event(target, "bye", 1)
    ctx.call_activity(greet, "never waited for")
    return "done"


@app.orchestrator
def fans_out(ctx, names):
    first = yield ctx.when_any([ctx.call_activity(greet, n) for n in names])
    everything = yield ctx.when_all([ctx.call_activity(greet, n) for n in names])
    return [first.result, everything]


@app.orchestrator
def identifies(ctx, _):
    first = ctx.new_uuid()
    yield ctx.call_activity(greet, first)
    return [first, ctx.new_uuid(), ctx.is_replaying]


def _started(name: str, input=None) -> tuple[h.Event, h.Event]:
    return orchestrator_started(), execution_started(name, input)


def _woken(name: str, input, fire_at: float, now: float):
    """Orchestrator ``name`` replayed to its first timer, then woken by it at ``now``."""
    created = timer_created(0, fire_at)
    woken = (orchestrator_started(now), timer_fired(0, fire_at))
    return replay(app, name, *_started(name, input), created, new=woken)


def _answered(name: str, input, call: h.Event, answer: h.Event):
    """Orchestrator ``name`` replayed to where its first call (``call``) was answered."""
    return replay(app, name, *_started(name, input), call, orchestrator_started(), answer)


# -- activities ---------------------------------------------------------------------------


def test_a_first_step_schedules_the_first_activity():
    r = replay(app, "sequence", new=_started("sequence", ["a", "b"]))
    assert r.take_actions() == [ScheduleActivity(0, "greet", "a", None)]
    assert r.outcome is None and not r.is_replaying


def test_a_result_in_the_history_moves_the_code_on_without_calling_again():
    r = replay(
        app,
        "sequence",
        *_started("sequence", ["a", "b"]),
        scheduled(0, "greet", "a"),
        new=(orchestrator_started(T0 + 1), completed(0, "hello a")),
    )
    assert r.take_actions() == [ScheduleActivity(1, "greet", "b", None)]
    assert r.custom_status_json == '{"done":1}'


def test_the_last_result_completes_the_execution():
    r = _answered("sequence", ["a"], scheduled(0, "greet", "a"), completed(0, "hello a"))
    assert r.outcome == Completed(["hello a"]) and r.take_actions() == []


def test_an_activity_failure_is_raised_in_the_code():
    r = _answered("survives_failure", None, scheduled(0, "flaky", 1), failed(0, "disk full", 3))
    assert r.outcome == Completed({"caught": "disk full", "attempts": 3})


def test_an_uncaught_activity_failure_fails_the_execution():
    r = _answered("sequence", ["a"], scheduled(0, "greet", "a"), failed(0, "no such name"))
    assert isinstance(r.outcome, Failed)
    assert r.outcome.failure.type == "tenuto.errors.ActivityFailed"
    assert "no such name" in r.outcome.failure.message


# -- retries ------------------------------------------------------------------------------


def test_a_call_carries_the_activity_s_retry_policy_or_its_own():
    default = replay(app, "survives_failure", new=_started("survives_failure"))
    assert default.take_actions() == [ScheduleActivity(0, "flaky", 1, POLICY)]
    own = replay(app, "retried", new=_started("retried"))
    assert own.take_actions() == [ScheduleActivity(0, "flaky", 2, tenuto.RetryPolicy(7))]


# -- timers -------------------------------------------------------------------------------


def test_a_timer_fires_at_its_time_and_the_clock_moves_with_the_steps():
    r = replay(app, "sleeps", new=_started("sleeps", 30))
    assert r.take_actions() == [CreateTimer(0, T0 + 30)]
    assert _woken("sleeps", 30, T0 + 30, T0 + 31).outcome == Completed(31.0)


# -- external events ----------------------------------------------------------------------


def test_events_are_delivered_in_order_and_kept_until_waited_for():
    r = replay(
        app,
        "approvals",
        *_started("approvals"),
        orchestrator_started(),
        raised("approve", "first"),
        raised("approve", "second"),
    )
    assert r.outcome == Completed(["first", "second"])


def test_an_event_that_does_not_come_in_time_raises_in_the_code():
    r = replay(app, "impatient", new=_started("impatient"))
    assert r.take_actions() == [CreateTimer(0, T0 + 60)]
    assert _woken("impatient", None, T0 + 60, T0 + 60).outcome == Completed("timed out")
    on_time = replay(
        app,
        "impatient",
        *_started("impatient"),
        timer_created(0, T0 + 60),
        new=(orchestrator_started(T0 + 5), raised("approve", "yes")),
    )
    assert on_time.outcome == Completed("yes")


# -- sub-orchestrations -------------------------------------------------------------------


def test_sub_orchestrations_get_derived_or_given_ids_and_their_results():
    r = replay(app, "parent", new=_started("parent", 5))
    assert r.take_actions() == [CreateSubOrchestration(0, "child", f"{INSTANCE}:0", 5)]
    r = replay(
        app,
        "parent",
        *_started("parent", 5),
        sub_created(0, "child", f"{INSTANCE}:0", 5),
        new=(orchestrator_started(), sub_completed(0, 5)),
    )
    assert r.take_actions() == [CreateSubOrchestration(1, "child", "explicit-child", 5)]


def test_a_failed_sub_orchestration_fails_the_parent_naming_the_child():
    created = sub_created(0, "child", f"{INSTANCE}:0", 5)
    r = _answered("parent", 5, created, sub_failed(0, "bad value"))
    assert isinstance(r.outcome, Failed)
    assert r.outcome.failure.type == "tenuto.errors.SubOrchestrationFailed"
    assert f"{INSTANCE}:0" in r.outcome.failure.message


# -- continue-as-new ----------------------------------------------------------------------


def test_continue_as_new_ends_the_execution_with_the_new_input_and_carries_events():
    r = replay(app, "loops", new=_started("loops", 1))
    assert r.outcome == ContinuedAsNew(2, ())
    assert r.receive(raised("late", "kept")) is False  # not history: carried over
    assert r.outcome == ContinuedAsNew(2, (("late", "kept"),))
    done = replay(app, "loops", new=_started("loops", 3))
    assert done.outcome == Completed(3)


# -- self-pause ---------------------------------------------------------------------------


def test_a_self_pause_completes_when_the_instance_is_resumed():
    r = replay(app, "careful", new=_started("careful"))
    assert r.take_actions() == [PauseSelf(0, "check the input")]
    r = replay(
        app,
        "careful",
        *_started("careful"),
        paused_itself(0, "check the input"),
        new=(orchestrator_started(), resumed()),
    )
    assert r.take_actions() == [ScheduleActivity(1, "greet", "after the pause", None)]


def test_a_pause_by_a_client_is_nothing_the_code_sees():
    client_pause = h.Event(h.EXECUTION_SUSPENDED, T0, {"reason": "ops", "by": "me"})
    r = replay(
        app,
        "sequence",
        *_started("sequence", ["a"]),
        scheduled(0, "greet", "a"),
        client_pause,
        resumed(),
        orchestrator_started(),
        completed(0, "hello a"),
    )
    assert r.outcome == Completed(["hello a"])


# -- sending events, composite tasks, ids -------------------------------------------------


def test_a_sent_event_is_an_action_that_nothing_waits_for():
    r = replay(app, "notifies", new=_started("notifies", "other"))
    assert r.take_actions() == [
        SendEvent(0, "other", "ready", {"from": INSTANCE}),
        ScheduleActivity(1, "greet", "sent", None),
    ]


def test_events_sent_in_the_last_step_are_sent_and_tasks_left_behind_are_not_started():
    r = replay(app, "says_goodbye", new=_started("says_goodbye", "other"))
    assert r.outcome == Completed("done")
    assert r.take_actions() == [SendEvent(0, "other", "bye", 1)]


def test_when_any_then_when_all():
    r = replay(
        app,
        "fans_out",
        *_started("fans_out", ["a", "b"]),
        scheduled(0, "greet", "a"),
        scheduled(1, "greet", "b"),
        new=(orchestrator_started(), completed(1, "hello b")),
    )
    assert r.take_actions() == [
        ScheduleActivity(2, "greet", "a", None),
        ScheduleActivity(3, "greet", "b", None),
    ]


def test_new_uuid_is_the_same_on_every_replay_and_is_replaying_says_which():
    first = replay(app, "identifies", new=_started("identifies"))
    (action,) = first.take_actions()
    again = replay(
        app,
        "identifies",
        *_started("identifies"),
        scheduled(0, "greet", action.input),
        new=(orchestrator_started(), completed(0, "ok")),
    )
    assert isinstance(again.outcome, Completed)
    uuid, second, replaying = again.outcome.output
    assert uuid == action.input and second != uuid and replaying is False


# -- what a step receives -----------------------------------------------------------------


def test_a_duplicate_result_or_one_for_no_task_is_not_received():
    r = replay(app, "sequence", *_started("sequence", ["a", "b"]), scheduled(0, "greet", "a"))
    assert r.receive(completed(7, "never scheduled")) is False
    assert r.receive(completed(0, "hello a")) is True
    assert r.receive(completed(0, "hello a, again")) is False


# -- nondeterminism -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recorded", "says"),
    [
        (
            scheduled(0, "flaky", "a"),
            "its history says it calls activity 'flaky', but the code now calls activity 'greet'",
        ),
        (
            timer_created(0, T0 + 5),
            "its history says it creates a timer, but the code now calls activity 'greet'",
        ),
        (
            sub_created(0, "child", "c", None),
            "its history says it calls sub-orchestrator "
            "'child', but the code now calls activity 'greet'",
        ),
    ],
)
def test_code_that_no_longer_matches_its_history_fails_with_a_nondeterminism_error(
    recorded, says, monkeypatch
):
    monkeypatch.setattr(app, "on_nondeterminism", "fail")
    r = replay(app, "sequence", *_started("sequence", ["a"]), recorded)
    assert isinstance(r.outcome, Failed)
    assert r.outcome.failure.type == "tenuto.errors.NonDeterminismError"
    assert "orchestrator 'sequence' is not deterministic: at step 0" in r.outcome.failure.message
    assert says in r.outcome.failure.message


def test_another_kind_of_call_at_a_step_is_a_nondeterminism_error(monkeypatch):
    monkeypatch.setattr(app, "on_nondeterminism", "fail")
    r = replay(app, "careful", *_started("careful"), scheduled(0, "greet", "x"))
    assert isinstance(r.outcome, Failed)
    assert "calls activity 'greet', but the code now pauses itself" in r.outcome.failure.message
