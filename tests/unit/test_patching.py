"""``ctx.patched`` and ``ctx.deprecate_patch``, fed histories by hand: old instances keep
the old path, new ones take the new one, and the marker says which is which."""

from __future__ import annotations

import pytest

import tenuto
from tenuto import history as h
from tenuto.actions import PatchMarker, ScheduleActivity

from histories import (
    T0,
    completed,
    execution_started,
    orchestrator_started,
    raised,
    replay,
    row,
    scheduled,
    step,
)

app = tenuto.App()
for _name in ("reserve", "check_fraud", "ship"):
    app.activity(name=_name)(lambda item: item)


@app.orchestrator
def patched_order(ctx, item):
    if ctx.patched("fraud-check"):
        yield ctx.call_activity("check_fraud", item)
    yield ctx.call_activity("reserve", item)
    return (yield ctx.wait_for_event("approve"))


@app.orchestrator
def deprecated_order(ctx, item):
    ctx.deprecate_patch("fraud-check")
    yield ctx.call_activity("check_fraud", item)
    yield ctx.call_activity("reserve", item)
    return (yield ctx.wait_for_event("approve"))


def marker(patch: str = "fraud-check") -> h.Event:
    return h.Event(h.PATCH_MARKER, T0, {"patch": patch})


def _old(name: str) -> list[h.Event]:
    """Recorded before the change: reserve at step 0, no marker."""
    return [
        orchestrator_started(),
        execution_started(name, "book"),
        scheduled(0, "reserve", "book"),
        orchestrator_started(T0 + 1),
        completed(0, "reserved"),
    ]


def _new(name: str) -> list[h.Event]:
    """Recorded with the patch: its marker after the event that led there."""
    return [
        orchestrator_started(),
        execution_started(name, "book"),
        scheduled(0, "check_fraud", "book"),
        marker(),
        orchestrator_started(T0 + 1),
        completed(0, "clean"),
        scheduled(1, "reserve", "book"),
    ]


def _calls(actions: list) -> list[tuple[int, str]]:
    return [(a.task_id, a.name) for a in actions if isinstance(a, ScheduleActivity)]


def test_a_new_instance_takes_the_new_path_and_records_the_marker():
    r = replay(app, "patched_order", orchestrator_started(), execution_started("patched_order"))
    actions = r.take_actions()
    assert _calls(actions) == [(0, "check_fraud")]
    assert [a for a in actions if isinstance(a, PatchMarker)] == [PatchMarker("fraud-check")]


def test_the_step_writes_the_marker_in_the_history():
    ep = step(app, row("patched_order"), [], [])
    types = [r.event.type for r in ep.history]
    assert types == ["OrchestratorStarted", "ExecutionStarted", "TaskScheduled", "PatchMarker"]
    assert ep.history[-1].event.data == {"patch": "fraud-check"}


def test_an_old_instance_keeps_the_old_path():
    r = replay(app, "patched_order", *_old("patched_order"), new=(raised("approve", "yes"),))
    assert r.mismatch is None
    assert r.outcome is not None and r.outcome.output == "yes"
    assert not [a for a in r.take_actions() if isinstance(a, PatchMarker)]


def test_a_history_with_the_marker_replays_the_new_path_without_a_second_marker():
    r = replay(app, "patched_order", *_new("patched_order"), new=(completed(1, "reserved"),))
    assert r.mismatch is None and r.outcome is None
    assert r.take_actions() == []  # waits for the approval; the marker is recorded already


def test_an_old_instance_that_reaches_the_patch_later_takes_the_new_path():
    @app.orchestrator
    def late_patch(ctx, item):
        yield ctx.call_activity("reserve", item)
        if ctx.patched("gift-wrap"):
            yield ctx.call_activity("check_fraud", item)
        yield ctx.call_activity("ship", item)

    # Past the end of what the history recorded, the code is on new ground.
    for r in (
        replay(app, "late_patch", *_old("late_patch")),
        replay(app, "late_patch", *_old("late_patch")[:3], new=(completed(0, "reserved"),)),
    ):
        actions = r.take_actions()
        assert _calls(actions) == [(1, "check_fraud")]
        assert PatchMarker("gift-wrap") in actions


def test_deprecate_patch_refuses_a_history_recorded_before_the_change():
    r = replay(app, "deprecated_order", *_old("deprecated_order"))
    assert r.mismatch is not None
    assert r.mismatch.mismatch == (
        "its history was recorded before change 'fraud-check' (it took the old path), but "
        "the code now only has the new one (ctx.deprecate_patch('fraud-check'))"
    )


def test_deprecate_patch_replays_a_patched_history_and_starts_new_ones_on_the_new_path():
    r = replay(app, "deprecated_order", *_new("deprecated_order"), new=(completed(1, "r"),))
    assert r.mismatch is None and r.take_actions() == []
    fresh = replay(
        app, "deprecated_order", orchestrator_started(), execution_started("deprecated_order")
    )
    assert _calls(fresh.take_actions()) == [(0, "check_fraud")]
    assert not [a for a in fresh.take_actions() if isinstance(a, PatchMarker)]


@pytest.mark.parametrize("bad", ["", "x" * 300, "a\nb"])
def test_a_bad_change_id_is_refused(bad):
    @app.orchestrator(name=f"bad_patch_{len(bad)}")
    def bad_patch(ctx, _):
        ctx.patched(bad)
        yield ctx.call_activity("ship", 1)

    r = replay(app, f"bad_patch_{len(bad)}", orchestrator_started(), execution_started("x"))
    assert r.outcome is not None and r.outcome.failure.type == "ValueError"
    assert "change id" in r.outcome.failure.message
