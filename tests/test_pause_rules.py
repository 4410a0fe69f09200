"""The nine pause rules of the product contract, each with its own tests."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

import tenuto
from tenuto import Status

from helpers import Gate, settle, wait_for

app = tenuto.App()
gate = Gate()
starts: list[tuple[str, int, float]] = []
runs: dict[tuple[str, int], int] = {}
_lock = threading.Lock()


def _record(x: int) -> None:
    info = tenuto.activity_info()
    with _lock:
        starts.append((info.instance_id, x, info.started_at))
        key = (info.instance_id, x)
        runs[key] = runs.get(key, 0) + 1


@pytest.fixture(autouse=True)
def _fresh_state():
    gate.reset()


@app.activity
def step(x: int) -> int:
    _record(x)
    return x * 10


@app.activity
def gated(x: int) -> int:
    _record(x)
    gate.wait((tenuto.activity_info().instance_id, x))
    return x * 10


@app.activity
def brief(x: int) -> int:
    _record(x)
    time.sleep(0.005)
    return x


@app.orchestrator
def steps(ctx, n):
    out = []
    for i in range(n):
        out.append((yield ctx.call_activity(gated, i)))
    return out


@app.orchestrator
def fan(ctx, n):
    return (yield ctx.when_all([ctx.call_activity(gated, i) for i in range(n)]))


@app.orchestrator
def many_brief(ctx, n):
    return (yield ctx.when_all([ctx.call_activity(brief, i) for i in range(n)]))


@app.orchestrator
def timer_then_step(ctx, seconds):
    yield ctx.create_timer(timedelta(seconds=seconds))
    return (yield ctx.call_activity(step, 1))


@app.orchestrator
def events_in_order(ctx, n):
    got = []
    for _ in range(n):
        got.append((yield ctx.wait_for_event("e")))
    return got


@app.orchestrator
def event_or_timeout(ctx, seconds):
    try:
        return (yield ctx.wait_for_event("answer", timeout=timedelta(seconds=seconds)))
    except tenuto.EventTimeout:
        return "timed out"


@app.orchestrator
def event_then_child(ctx, _):
    yield ctx.wait_for_event("go")
    return (yield ctx.call_sub_orchestrator(steps, 1, instance_id=f"{ctx.instance_id}-child"))


@app.orchestrator
def parent_of_two(ctx, _):
    a = ctx.call_sub_orchestrator(steps, 1, instance_id=f"{ctx.instance_id}-a")
    b = ctx.call_sub_orchestrator(steps, 1, instance_id=f"{ctx.instance_id}-b")
    return (yield ctx.when_all([a, b]))


@app.orchestrator
def self_pausing(ctx, _):
    first = yield ctx.call_activity(step, 1)
    yield ctx.pause("needs a human")
    second = yield ctx.call_activity(step, 2)
    return [first, second]


@app.orchestrator
async def self_pausing_async(ctx, _):
    first = await ctx.call_activity(step, 1)
    await ctx.pause("needs a human")
    second = await ctx.call_activity(step, 2)
    return [first, second]


def _status(client, iid):
    return client.status(iid).runtime_status


def _started(iid):
    with _lock:
        return [(x, t) for i, x, t in starts if i == iid]


def _history_types(client, iid):
    return [e.type for e in client.history(iid)]


# -- rule 1 ------------------------------------------------------------------------------


def test_rule1_pause_of_running_instance_reads_paused_when_the_call_returns(client, start_worker):
    start_worker(app)
    iid = client.start(steps, 2)
    wait_for(lambda: gate.is_waiting((iid, 0)))
    assert client.pause(iid, "maintenance") is True
    st = client.status(iid)
    assert st.runtime_status is Status.PAUSED
    assert st.pause is not None and st.pause.reason == "maintenance" and st.pause.by == "tester"
    gate.open((iid, 0))
    client.terminate(iid)


def test_rule1_pause_of_pending_instance(client, start_worker):
    later = datetime.now(UTC) + timedelta(hours=1)
    iid = client.start(steps, 1, start_at=later)
    assert _status(client, iid) is Status.PENDING
    client.pause(iid, "not yet")
    assert _status(client, iid) is Status.PAUSED
    client.resume(iid)
    assert _status(client, iid) is Status.PENDING  # never started: back to PENDING


def test_rule1_paused_before_its_first_step_never_starts_until_resumed(client, start_worker):
    iid = client.start(steps, 1)
    client.pause(iid, "hold")
    worker = start_worker(app)
    settle(worker)
    assert _started(iid) == []
    assert _history_types(client, iid) == ["ExecutionSuspended"]
    client.resume(iid)
    wait_for(lambda: gate.is_waiting((iid, 0)))
    gate.open((iid, 0))
    assert client.wait(iid, timeout=10).output == [0]


def test_rule1_queued_activities_do_not_start_after_pause_returns(client, start_worker):
    worker = start_worker(app, concurrency=1)
    iid = client.start(fan, 4)
    wait_for(lambda: gate.is_waiting((iid, 0)))  # one runs, three are queued
    client.pause(iid, "hold the queue")
    returned = time.time()
    gate.open((iid, 0))
    wait_for(lambda: worker.running_activities == 0)
    settle(worker)
    assert [x for x, _ in _started(iid)] == [0]
    assert all(t < returned for _, t in _started(iid))
    client.resume(iid)
    for i in (1, 2, 3):
        wait_for(lambda i=i: gate.is_waiting((iid, i)))
        gate.open((iid, i))
    assert client.wait(iid, timeout=10).output == [0, 10, 20, 30]


def test_rule1_no_activity_starts_after_pause_returns_under_load(client, start_worker):
    """Pause while activities are being leased and started as fast as the worker can."""
    worker = start_worker(app, concurrency=4)
    ids = [client.start(many_brief, 40) for _ in range(3)]
    wait_for(lambda: len(_started(ids[0])) >= 4)
    returned = {}
    for iid in ids:
        assert client.pause(iid, "storm") is True
        returned[iid] = time.time()
    wait_for(lambda: worker.running_activities == 0)
    settle(worker)
    for iid in ids:
        late = [(x, t) for x, t in _started(iid) if t >= returned[iid]]
        assert late == [], f"{iid}: activities started after pause returned: {late}"
    before = {iid: len(_started(iid)) for iid in ids}
    assert all(n < 40 for n in before.values()), "pause came too late to hold anything"
    for iid in ids:
        client.resume(iid)
    for iid in ids:
        assert client.wait(iid, timeout=30).output == list(range(40))
        assert all(runs[(iid, x)] == 1 for x in range(40))


def test_rule1_timer_does_not_fire_while_paused(client, start_worker):
    worker = start_worker(app)
    iid = client.start(timer_then_step, 0.2)
    wait_for(lambda: "TimerCreated" in _history_types(client, iid))
    client.pause(iid)
    due = client.history(iid)[-2].data  # TimerCreated precedes the pause record
    wait_for(lambda: time.time() > datetime.fromisoformat(due["fire_at"]).timestamp() + 0.1)
    settle(worker)
    assert "TimerFired" not in _history_types(client, iid)
    assert _started(iid) == []
    client.resume(iid)
    assert client.wait(iid, timeout=10).output == 10


def test_rule1_sub_orchestration_does_not_start_while_paused(client, start_worker):
    worker = start_worker(app)
    iid = client.start(event_then_child, None, instance_id="p-sub")
    wait_for(lambda: _status(client, iid) is Status.RUNNING)
    client.pause(iid)
    client.raise_event(iid, "go")
    settle(worker)
    with pytest.raises(tenuto.InstanceNotFound):
        client.status("p-sub-child")
    client.resume(iid)
    wait_for(lambda: gate.is_waiting(("p-sub-child", 0)))
    gate.open(("p-sub-child", 0))
    assert client.wait(iid, timeout=10).output == [0]


# -- rule 2 ------------------------------------------------------------------------------


def test_rule2_started_work_finishes_and_its_result_waits_for_resume(client, start_worker):
    worker = start_worker(app)
    iid = client.start(steps, 2)
    wait_for(lambda: gate.is_waiting((iid, 0)))
    client.pause(iid, "mid-activity")
    gate.open((iid, 0))
    wait_for(lambda: worker.running_activities == 0)
    settle(worker)
    assert "TaskCompleted" not in _history_types(client, iid)  # stored, not yet handed over
    assert _status(client, iid) is Status.PAUSED
    client.resume(iid)
    wait_for(lambda: gate.is_waiting((iid, 1)))
    gate.open((iid, 1))
    assert client.wait(iid, timeout=10).output == [0, 10]
    assert runs[(iid, 0)] == 1 and runs[(iid, 1)] == 1
    assert _history_types(client, iid).count("TaskCompleted") == 2


# -- rule 3 ------------------------------------------------------------------------------


def test_rule3_orchestrator_does_not_advance_while_paused(client, start_worker):
    worker = start_worker(app)
    iid = client.start(steps, 3)
    wait_for(lambda: gate.is_waiting((iid, 0)))
    client.pause(iid)
    length = len(client.history(iid))
    gate.open((iid, 0))
    wait_for(lambda: worker.running_activities == 0)
    settle(worker)
    assert len(client.history(iid)) == length
    assert [x for x, _ in _started(iid)] == [0]
    assert _status(client, iid) is Status.PAUSED
    gate.open((iid, 1))
    gate.open((iid, 2))
    client.resume(iid)
    assert client.wait(iid, timeout=10).output == [0, 10, 20]


def test_rule3_timer_due_while_paused_fires_right_after_resume(client, start_worker):
    worker = start_worker(app)
    iid = client.start(timer_then_step, 0.1)
    wait_for(lambda: "TimerCreated" in _history_types(client, iid))
    client.pause(iid)
    wait_for(lambda: time.time() > client.status(iid).created_at.timestamp() + 0.3)
    settle(worker)
    resumed = time.time()
    client.resume(iid)
    out = client.wait(iid, timeout=10)
    assert out.output == 10
    fired = [e for e in client.history(iid) if e.type == "TimerFired"]
    assert len(fired) == 1
    # Processed in the first step after the resume.
    steps_after = [
        e
        for e in client.history(iid)
        if e.type == "OrchestratorStarted" and e.timestamp.timestamp() >= resumed
    ]
    assert steps_after


def test_rule3_events_raised_while_paused_arrive_in_order_after_resume(client, start_worker):
    worker = start_worker(app)
    iid = client.start(events_in_order, 5)
    wait_for(lambda: _status(client, iid) is Status.RUNNING)
    client.raise_event(iid, "e", 0)
    client.pause(iid)
    for i in range(1, 5):
        client.raise_event(iid, "e", i)
    settle(worker)
    assert _status(client, iid) is Status.PAUSED
    client.resume(iid)
    assert client.wait(iid, timeout=10).output == [0, 1, 2, 3, 4]
    raised = [e.data["data"] for e in client.history(iid) if e.type == "EventRaised"]
    assert raised == [0, 1, 2, 3, 4]


def test_rule3_an_event_that_came_before_the_timeout_wins_after_resume(client, start_worker):
    worker = start_worker(app)
    iid = client.start(event_or_timeout, 0.3)
    wait_for(lambda: "TimerCreated" in _history_types(client, iid))
    client.pause(iid)
    client.raise_event(iid, "answer", "yes")  # before the deadline
    created = client.status(iid).created_at.timestamp()
    wait_for(lambda: time.time() > created + 0.5)  # the deadline passes while paused
    settle(worker)
    client.resume(iid)
    assert client.wait(iid, timeout=10).output == "yes"


# -- rule 4 ------------------------------------------------------------------------------


def test_rule4_resume_continues_exactly_where_it_stopped(client, start_worker):
    start_worker(app)
    iid = client.start(steps, 3)
    wait_for(lambda: gate.is_waiting((iid, 0)))
    gate.open((iid, 0))
    wait_for(lambda: gate.is_waiting((iid, 1)))
    client.pause(iid)
    client.resume(iid)
    gate.open((iid, 1))
    wait_for(lambda: gate.is_waiting((iid, 2)))
    gate.open((iid, 2))
    assert client.wait(iid, timeout=10).output == [0, 10, 20]
    scheduled = [e.data["input"] for e in client.history(iid) if e.type == "TaskScheduled"]
    assert scheduled == [0, 1, 2]
    assert [runs[(iid, i)] for i in range(3)] == [1, 1, 1]


def test_rule4_pause_with_resume_at_resumes_by_itself(client, start_worker):
    start_worker(app)
    iid = client.start(events_in_order, 1)
    wait_for(lambda: _status(client, iid) is Status.RUNNING)
    at = datetime.now(UTC) + timedelta(seconds=0.3)
    client.pause(iid, "short break", resume_at=at)
    client.raise_event(iid, "e", "x")
    st = client.status(iid)
    assert st.pause is not None and st.pause.resume_at == at
    assert client.wait(iid, timeout=10).output == ["x"]
    resumed = [e for e in client.history(iid) if e.type == "ExecutionResumed"]
    assert len(resumed) == 1 and resumed[0].data["by"] == "schedule"
    assert resumed[0].timestamp >= at


def test_rule4_scheduled_resume_survives_a_worker_restart(client, start_worker, db_url):
    first = tenuto.Worker(app, db_url).start()
    iid = client.start(events_in_order, 1)
    wait_for(lambda: _status(client, iid) is Status.RUNNING)
    first.stop()
    at = datetime.now(UTC) + timedelta(seconds=0.2)
    client.pause(iid, "overnight", resume_at=at)
    client.raise_event(iid, "e", "payload")
    wait_for(lambda: datetime.now(UTC) > at + timedelta(seconds=0.1))
    assert _status(client, iid) is Status.PAUSED  # nobody was running to resume it
    start_worker(app)
    assert client.wait(iid, timeout=10).output == ["payload"]


def test_rule4_resume_at_on_a_paused_instance_sets_or_moves_its_scheduled_resume(
    client, start_worker
):
    start_worker(app)
    iid = client.start(events_in_order, 1)
    wait_for(lambda: _status(client, iid) is Status.RUNNING)
    assert client.pause(iid, "incident", by="alice") is True
    since = client.status(iid).pause.since  # type: ignore[union-attr]
    later = datetime.now(UTC) + timedelta(hours=1)
    assert client.pause(iid, "until the fix ships", resume_at=later, by="bob") is True
    st = client.status(iid)
    assert st.pause is not None and st.pause.resume_at == later
    assert (st.pause.reason, st.pause.by, st.pause.since) == ("incident", "alice", since)
    assert client.pause(iid, "again", resume_at=later) is False  # the same time: no change
    soon = datetime.now(UTC) + timedelta(seconds=0.3)
    assert client.pause(iid, "sooner", resume_at=soon) is True  # moved
    records = [e for e in client.history(iid) if e.type == "ExecutionSuspended"]
    assert [e.data.get("rescheduled") for e in records] == [None, True, True]
    assert records[1].data["by"] == "bob" and records[1].data["reason"] == "until the fix ships"
    assert records[2].data["resume_at"] == soon.isoformat()
    client.raise_event(iid, "e", "x")
    assert client.wait(iid, timeout=10).output == ["x"]  # resumed by itself at the new time
    resumed = [e for e in client.history(iid) if e.type == "ExecutionResumed"]
    assert len(resumed) == 1 and resumed[0].data["by"] == "schedule"
    assert resumed[0].timestamp >= soon


def test_rule4_resume_at_schedules_the_resume_of_a_self_paused_instance(client, start_worker):
    start_worker(app)
    iid = client.start(self_pausing, None)
    wait_for(lambda: _status(client, iid) is Status.PAUSED)
    assert client.pause(iid, resume_at=datetime.now(UTC) + timedelta(seconds=0.2)) is True
    assert client.status(iid).pause.source == "orchestration"  # type: ignore[union-attr]
    assert client.wait(iid, timeout=10).runtime_status is Status.COMPLETED


# -- rule 5 ------------------------------------------------------------------------------


@pytest.mark.parametrize("orchestrator", [self_pausing, self_pausing_async])
def test_rule5_orchestration_pauses_itself_until_resumed(client, start_worker, orchestrator):
    worker = start_worker(app)
    iid = client.start(orchestrator, None)
    wait_for(lambda: _status(client, iid) is Status.PAUSED)
    st = client.status(iid)
    assert st.pause is not None
    assert (st.pause.reason, st.pause.by, st.pause.source) == (
        "needs a human",
        "orchestration",
        "orchestration",
    )
    settle(worker)
    assert [x for x, _ in _started(iid)] == [1]
    client.resume(iid, "checked")
    assert client.wait(iid, timeout=10).output == [10, 20]


def test_rule5_self_pause_survives_a_cold_replay(client, start_worker):
    worker = start_worker(app, cache_size=0)
    iid = client.start(self_pausing, None)
    wait_for(lambda: _status(client, iid) is Status.PAUSED)
    settle(worker)
    client.resume(iid)
    assert client.wait(iid, timeout=10).output == [10, 20]


# -- rule 6 ------------------------------------------------------------------------------


def test_rule6_pausing_a_parent_pauses_its_children_and_resume_restores_them(client, start_worker):
    start_worker(app)
    iid = client.start(parent_of_two, None, instance_id="fam6")
    wait_for(lambda: gate.is_waiting(("fam6-a", 0)) and gate.is_waiting(("fam6-b", 0)))
    client.pause("fam6-b", "paused on its own")
    client.pause(iid, "whole family")
    assert _status(client, "fam6-a") is Status.PAUSED
    a = client.status("fam6-a").pause
    assert a is not None and a.source == "parent" and a.reason == "whole family"
    b = client.status("fam6-b").pause
    assert b is not None and b.source == "client" and b.reason == "paused on its own"
    client.resume(iid)
    assert _status(client, "fam6-a") is Status.RUNNING
    assert _status(client, "fam6-b") is Status.PAUSED  # it was not paused by the parent
    gate.open(("fam6-a", 0))
    gate.open(("fam6-b", 0))
    client.resume("fam6-b")
    assert client.wait(iid, timeout=10).output == [[0], [0]]


def test_rule6_terminating_a_paused_instance(client, start_worker):
    worker = start_worker(app)
    iid = client.start(steps, 2)
    wait_for(lambda: gate.is_waiting((iid, 0)))
    client.pause(iid)
    client.terminate(iid, "obsolete")
    st = client.status(iid)
    assert st.runtime_status is Status.TERMINATED
    assert st.pause is None
    assert st.failure is not None and "obsolete" in st.failure.message
    gate.open((iid, 0))
    wait_for(lambda: worker.running_activities == 0)
    settle(worker)
    assert _status(client, iid) is Status.TERMINATED
    assert _history_types(client, iid)[-1] == "ExecutionTerminated"


def test_rule6_terminating_a_parent_terminates_its_children(client, start_worker):
    start_worker(app)
    iid = client.start(parent_of_two, None, instance_id="fam6t")
    wait_for(lambda: gate.is_waiting(("fam6t-a", 0)))
    client.terminate(iid, "stop all")
    assert _status(client, "fam6t-a") is Status.TERMINATED
    assert _status(client, "fam6t-b") is Status.TERMINATED
    gate.open(("fam6t-a", 0))
    gate.open(("fam6t-b", 0))


# -- rule 7 ------------------------------------------------------------------------------


def test_rule7_pause_of_paused_and_resume_of_running_are_noops(client, start_worker):
    start_worker(app)
    iid = client.start(events_in_order, 1)
    wait_for(lambda: _status(client, iid) is Status.RUNNING)
    assert client.resume(iid) is False
    assert client.pause(iid, "first") is True
    assert client.pause(iid, "second") is False
    st = client.status(iid)
    assert st.pause is not None and st.pause.reason == "first"
    assert _history_types(client, iid).count("ExecutionSuspended") == 1
    assert client.resume(iid) is True
    assert client.resume(iid) is False
    assert _history_types(client, iid).count("ExecutionResumed") == 1


def test_rule7_pause_or_resume_of_finished_instance_is_an_error(client, start_worker):
    start_worker(app)
    iid = client.start(timer_then_step, 0)
    client.wait(iid, timeout=10)
    with pytest.raises(tenuto.InstanceFinished, match="already finished"):
        client.pause(iid)
    with pytest.raises(tenuto.InstanceFinished) as info:
        client.resume(iid)
    assert info.value.status is Status.COMPLETED


def test_rule7_unknown_instance_is_not_found(client):
    for call in (client.pause, client.resume, client.status, client.terminate):
        with pytest.raises(tenuto.InstanceNotFound, match="no-such-id"):
            call("no-such-id")


# -- rule 8 ------------------------------------------------------------------------------


def test_rule8_pause_and_resume_are_recorded_in_history_and_the_tracking_log(
    client, start_worker, caplog
):
    start_worker(app)
    iid = client.start(events_in_order, 1)
    wait_for(lambda: _status(client, iid) is Status.RUNNING)
    caplog.set_level(logging.INFO, logger="tenuto")
    before = datetime.now(UTC)
    client.pause(iid, "audit window", by="alice")
    client.resume(iid, "audit done", by="bob")
    suspended, resumed = [
        e for e in client.history(iid) if e.type in ("ExecutionSuspended", "ExecutionResumed")
    ]
    assert suspended.data["reason"] == "audit window" and suspended.data["by"] == "alice"
    assert resumed.data["reason"] == "audit done" and resumed.data["by"] == "bob"
    assert before <= suspended.timestamp <= resumed.timestamp
    records = [r.tenuto for r in caplog.records if hasattr(r, "tenuto")]
    assert {
        "event": "paused",
        "instance_id": iid,
        "reason": "audit window",
        "by": "alice",
        "source": "client",
        "resume_at": None,
    } in records
    assert {"event": "resumed", "instance_id": iid, "reason": "audit done", "by": "bob"} in records


# -- rule 9 ------------------------------------------------------------------------------


def test_rule9_query_filters_by_paused(client, start_worker):
    start_worker(app)
    ids = [client.start(events_in_order, 1) for _ in range(4)]
    wait_for(lambda: all(_status(client, i) is Status.RUNNING for i in ids))
    client.pause(ids[1])
    client.pause(ids[3])
    paused = client.query(status=Status.PAUSED).items
    assert sorted(p.instance_id for p in paused) == sorted([ids[1], ids[3]])
    assert all(p.pause is not None for p in paused)


def test_rule9_wait_treats_paused_as_not_finished(client, start_worker):
    start_worker(app)
    iid = client.start(events_in_order, 1)
    wait_for(lambda: _status(client, iid) is Status.RUNNING)
    client.pause(iid)
    with pytest.raises(tenuto.WaitTimeout, match="PAUSED"):
        client.wait(iid, timeout=0.2)


def test_rule9_bulk_pause_and_resume_return_how_many_changed(client, start_worker):
    start_worker(app)
    ours = [client.start(events_in_order, 1, instance_id=f"bulk-{i}") for i in range(5)]
    other = client.start(events_in_order, 1, instance_id="other-1")
    wait_for(lambda: all(_status(client, i) is Status.RUNNING for i in [*ours, other]))
    client.pause("bulk-0")
    assert client.pause_many(id_prefix="bulk-", reason="bulk") == 4
    assert client.pause_many(id_prefix="bulk-", reason="again") == 0
    assert _status(client, other) is Status.RUNNING
    assert client.resume_many(name="events_in_order", id_prefix="bulk-") == 5
    assert all(_status(client, i) is Status.RUNNING for i in ours)
    for iid in [*ours, other]:
        client.raise_event(iid, "e", iid)
    assert [client.wait(i, timeout=10).output for i in ours] == [[i] for i in ours]
