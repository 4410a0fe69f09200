"""Code that no longer matches its history, without a store: the replay stops at the
mismatch and the step pauses the instance (``on_nondeterminism="pause"``, the
default), or the execution fails (``"fail"``)."""

from __future__ import annotations

import pytest

import tenuto
from tenuto import history as h
from tenuto.actions import Failed
from tenuto.status import Status

from histories import (
    T0,
    completed,
    execution_started,
    message,
    orchestrator_started,
    raised,
    replay,
    row,
    scheduled,
    step,
)

app = tenuto.App()
strict = tenuto.App(on_nondeterminism="fail")


@app.activity
def reserve(item: str) -> str:
    return item


@app.activity
def check_fraud(item: str) -> str:
    return item


def _v2(ctx, item):
    yield ctx.call_activity("check_fraud", item)
    yield ctx.call_activity("reserve", item)
    return (yield ctx.wait_for_event("approve"))


app.orchestrator(name="order")(_v2)
app.orchestrator(name="order_strict", on_nondeterminism="fail")(_v2)
for name in ("reserve", "check_fraud"):
    strict.activity(name=name)(lambda item: item)
strict.orchestrator(name="order")(_v2)
strict.orchestrator(name="order_lenient", on_nondeterminism="pause")(_v2)


def _v1_history(name: str) -> list[h.Event]:
    """What version 1 (reserve, then wait for the approval) recorded."""
    return [
        orchestrator_started(),
        execution_started(name, "book"),
        scheduled(0, "reserve", "book"),
        orchestrator_started(T0 + 1),
        completed(0, "book"),
    ]


def test_a_mismatch_stops_the_replay_and_says_where():
    r = replay(app, "order", *_v1_history("order"), new=(raised("approve", True),))
    assert r.outcome is None
    assert r.mismatch is not None
    assert r.mismatch.mismatch == (
        "at step 0 its history says it calls activity 'reserve', but the code now calls "
        "activity 'check_fraud'"
    )
    assert r.history_len == 6  # events after the mismatch are counted, and change nothing
    assert r.take_actions() == []


@pytest.mark.parametrize(
    ("which", "name"), [(app, "order_strict"), (strict, "order")], ids=["orchestrator", "app"]
)
def test_the_fail_policy_fails_the_execution(which, name):
    r = replay(which, name, *_v1_history(name))
    assert isinstance(r.outcome, Failed)
    assert r.outcome.failure.type == "tenuto.errors.NonDeterminismError"
    assert r.mismatch is None


def test_an_orchestrator_may_pause_where_its_app_fails():
    r = replay(strict, "order_lenient", *_v1_history("order_lenient"))
    assert r.outcome is None and r.mismatch is not None


def test_the_step_that_finds_a_mismatch_pauses_the_instance_and_keeps_its_inbox():
    history = _v1_history("order")
    ep = step(app, row("order"), history, [message(7, raised("approve", True))], now=T0 + 9)
    assert ep.changes["status"] is Status.PAUSED
    assert ep.changes["pause_source"] == "nondeterminism"
    assert ep.changes["pause_by"] == "tenuto"
    assert ep.changes["next_due"] is None
    assert "at step 0 its history says it calls activity 'reserve'" in ep.changes["pause_reason"]
    assert ep.changes["history_len"] == len(history) + 1
    assert ep.consumed == []  # the approval waits in the inbox for the resume
    assert ep.holds and not ep.activities and not ep.messages
    [suspended] = [r.event for r in ep.history]
    assert suspended.type == h.EXECUTION_SUSPENDED
    assert suspended.data["source"] == "nondeterminism"
    assert suspended.ts == T0 + 9
    assert ep.replayer is None  # not cached: the resume replays with the code it finds


@pytest.mark.parametrize("bad", ["ignore", "", 1])
def test_a_policy_that_does_not_exist_is_refused_where_the_app_is_written(bad):
    with pytest.raises(ValueError, match=r"on_nondeterminism.* must be 'pause' or 'fail'"):
        tenuto.App(on_nondeterminism=bad)
    with pytest.raises(ValueError, match="must be 'pause' or 'fail'"):
        app.orchestrator(on_nondeterminism=bad)
