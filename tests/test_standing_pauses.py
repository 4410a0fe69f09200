"""Standing pauses: a whole orchestrator type, or one activity type everywhere."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

import tenuto
from tenuto import RetryPolicy, Status

from helpers import Gate, settle, wait_for

app = tenuto.App()
gate = Gate()
started: list[tuple[str, str, float]] = []  # (activity, instance, started_at)
_lock = threading.Lock()
fails = {"left": 0}


def _record(name: str) -> None:
    info = tenuto.activity_info()
    with _lock:
        started.append((name, info.instance_id, info.started_at))


@app.activity
def charge_card(order: str) -> str:
    _record("charge_card")
    return f"charged {order}"


@app.activity
def ship(order: str) -> str:
    _record("ship")
    gate.wait(("ship", tenuto.activity_info().instance_id))
    return f"shipped {order}"


@app.activity
def flaky_charge(order: str) -> str:
    _record("flaky_charge")
    with _lock:
        fails["left"] -= 1
        failing = fails["left"] >= 0
    if failing:
        raise ConnectionError("billing is down")
    return order


@app.orchestrator
def checkout(ctx, order):
    return (yield ctx.call_activity(charge_card, order))


@app.orchestrator
def subscription(ctx, order):
    yield ctx.wait_for_event("renew")
    return (yield ctx.call_activity(charge_card, order))


@app.orchestrator
def backup(ctx, volume):
    yield ctx.wait_for_event("go")
    return volume


@app.orchestrator
def ship_then_charge(ctx, order):
    yield ctx.call_activity(ship, order)
    return (yield ctx.call_activity(charge_card, order))


@app.orchestrator
def retrying(ctx, order):
    policy = RetryPolicy(max_attempts=5, first_delay=0.05, backoff=1)
    return (yield ctx.call_activity(flaky_charge, order, retry=policy))


@pytest.fixture(autouse=True)
def _fresh():
    gate.reset()
    started.clear()
    fails["left"] = 0


def _status(client, iid):
    return client.status(iid).runtime_status


def _starts(name: str) -> list[tuple[str, float]]:
    with _lock:
        return [(iid, at) for n, iid, at in started if n == name]


# -- orchestrator type ------------------------------------------------------------------


def test_orchestrator_pause_holds_running_and_new_instances(client, start_worker):
    start_worker(app)
    running = [client.start(backup, f"vol-{i}", instance_id=f"b{i}") for i in range(2)]
    other = client.start(subscription, "o1", instance_id="other")
    for iid in [*running, other]:
        wait_for(lambda i=iid: _status(client, i) is Status.RUNNING)
    client.pause("b0", "paused on its own", by="alice")

    assert client.pause_orchestrator(backup, "business hours", by="ops") is True
    assert client.pause_orchestrator("backup", "again") is False
    assert _status(client, other) is Status.RUNNING
    b1 = client.status("b1").pause
    assert b1 is not None and (b1.reason, b1.by, b1.source) == (
        "business hours",
        "ops",
        "orchestrator",
    )
    assert client.status("b0").pause.reason == "paused on its own"

    late = client.start(backup, "vol-late", instance_id="late")  # accepted, and held
    st = client.status(late)
    assert st.runtime_status is Status.PAUSED
    assert (st.pause.reason, st.pause.source) == ("business hours", "orchestrator")
    assert [e.type for e in client.history(late)] == ["ExecutionSuspended"]

    assert client.resume_orchestrator(backup, "night window", by="ops") is True
    assert client.resume_orchestrator(backup) is False
    assert _status(client, "b0") is Status.PAUSED  # paused on its own: stays paused
    assert _status(client, "b1") is Status.RUNNING
    for iid in ("b1", "late"):
        client.raise_event(iid, "go")
    assert client.wait("late", timeout=10).output == "vol-late"
    assert client.wait("b1", timeout=10).output == "vol-1"
    resumed = [e for e in client.history("late") if e.type == "ExecutionResumed"]
    assert resumed[0].data == {"reason": "night window", "by": "ops"}


def test_children_of_a_paused_orchestrator_type_start_paused(client, start_worker):
    local = tenuto.App()

    @local.orchestrator
    def child(ctx, x):
        return x * 2

    @local.orchestrator
    def parent(ctx, x):
        return (yield ctx.call_sub_orchestrator(child, x, instance_id="the-child"))

    start_worker(local)
    client.pause_orchestrator("child", "child type on hold")
    iid = client.start(parent, 21)
    wait_for(lambda: client.query(id_prefix="the-child").items)
    assert _status(client, "the-child") is Status.PAUSED
    assert _status(client, iid) is Status.RUNNING
    client.resume_orchestrator("child")
    assert client.wait(iid, timeout=10).output == 42


# -- activity type ----------------------------------------------------------------------


def test_activity_pause_holds_queued_work_in_two_orchestrators_and_releases_in_order(
    client, start_worker
):
    worker = start_worker(app)
    assert client.pause_activity(charge_card, "billing upgrade", by="ops") is True
    assert client.pause_activity("charge_card") is False
    first = client.start(checkout, "o-1", instance_id="c1")
    second = client.start(ship_then_charge, "o-2", instance_id="s2")
    wait_for(lambda: gate.is_waiting(("ship", second)))  # other activities still run
    third = client.start(checkout, "o-3", instance_id="c3")
    # c3's charge is scheduled (and held) before s2's ship ends, so s2's comes last.
    wait_for(lambda: client.status(third).held_activities == ("charge_card",))
    gate.open(("ship", second))
    wait_for(lambda: client.status(second).held_activities == ("charge_card",))
    settle(worker)
    assert _starts("charge_card") == []
    for iid in (first, second, third):
        st = client.status(iid)
        assert st.runtime_status is Status.RUNNING  # waiting, not paused
        assert st.held_activities == ("charge_card",)
    held = [e for e in client.history(first) if e.type == "ActivityHeld"]
    assert held and held[0].data["activity"] == "charge_card"

    client.resume_activity(charge_card, "billing is back", by="ops")
    for iid in (first, second, third):
        assert client.wait(iid, timeout=10).runtime_status is Status.COMPLETED
    # Released in the order they were scheduled.
    scheduled = sorted(
        (e.timestamp, iid)
        for iid in (first, second, third)
        for e in client.history(iid)
        if e.type == "TaskScheduled" and e.data["name"] == "charge_card"
    )
    assert [iid for iid, _ in _starts("charge_card")] == [iid for _, iid in scheduled]
    assert [iid for _, iid in scheduled] == [first, third, second]  # ship came first in s2
    released = [e for e in client.history(first) if e.type == "ActivityReleased"]
    assert released and released[0].data["by"] == "ops"
    assert client.status(first).held_activities == ()


def test_activity_pause_lets_running_executions_finish_and_holds_retries(client, start_worker):
    worker = start_worker(app)
    fails["left"] = 1
    iid = client.start(retrying, "r1")
    wait_for(lambda: _starts("flaky_charge"))  # attempt 1 ran and failed
    assert client.pause_activity(flaky_charge, "hold retries")
    returned = time.time()
    wait_for(lambda: datetime.now(UTC).timestamp() > returned + 0.2)  # past the retry delay
    settle(worker)
    assert [at for _, at in _starts("flaky_charge") if at >= returned] == []
    assert client.status(iid).held_activities == ("flaky_charge",)
    client.resume_activity(flaky_charge)
    assert client.wait(iid, timeout=10).output == "r1"
    assert len(_starts("flaky_charge")) == 2

    # A running execution is not interrupted by a pause of its type.
    iid2 = client.start(ship_then_charge, "o-9")
    wait_for(lambda: gate.is_waiting(("ship", iid2)))
    client.pause_activity(ship, "too late for this one")
    gate.open(("ship", iid2))
    assert client.wait(iid2, timeout=10).output == "charged o-9"


def test_nothing_of_a_paused_activity_starts_after_the_call_returns(client, start_worker):
    start_worker(app, concurrency=4)
    ids = [client.start(checkout, f"o{i}") for i in range(60)]
    wait_for(lambda: len(_starts("charge_card")) >= 5)
    client.pause_activity(charge_card, "now")
    returned = time.time()
    late = [(iid, at) for iid, at in _starts("charge_card") if at >= returned]
    assert late == []
    client.resume_activity(charge_card)
    for iid in ids:
        assert client.wait(iid, timeout=30).runtime_status is Status.COMPLETED


# -- listing, scheduling, recording ---------------------------------------------------


def test_standing_pauses_lists_what_stands(client):
    at = datetime.now(UTC) + timedelta(hours=1)
    client.pause_orchestrator("backup", "business hours", resume_at=at, by="ops", force=True)
    client.pause_activity("charge_card", "upgrade", by="billing-team", force=True)
    pauses = client.standing_pauses()
    assert [(p.kind, p.name, p.reason, p.by) for p in pauses] == [
        ("orchestrator", "backup", "business hours", "ops"),
        ("activity", "charge_card", "upgrade", "billing-team"),
    ]
    assert pauses[0].resume_at == at and pauses[1].resume_at is None
    assert pauses[0].since <= pauses[1].since
    assert pauses[0].to_json()["kind"] == "orchestrator"
    client.resume_activity("charge_card")
    assert [p.name for p in client.standing_pauses()] == ["backup"]


def test_scheduled_resume_of_a_standing_pause_fires_after_a_worker_restart(client, db_url):
    first = tenuto.Worker(app, db_url).start()
    at = datetime.now(UTC) + timedelta(seconds=0.3)
    client.pause_activity(charge_card, "short upgrade", resume_at=at)
    iid = client.start(checkout, "o-s")
    wait_for(lambda: client.status(iid).held_activities == ("charge_card",))
    first.stop()
    wait_for(lambda: datetime.now(UTC) > at + timedelta(seconds=0.1))
    assert client.standing_pauses()  # nobody was running to end it
    with tenuto.Worker(app, db_url):
        assert client.wait(iid, timeout=10).output == "charged o-s"
    assert client.standing_pauses() == []


def test_standing_pauses_are_in_the_tracking_log(client, caplog):
    caplog.set_level(logging.INFO, logger="tenuto")
    client.pause_orchestrator("backup", "why", by="ops", force=True)
    client.resume_orchestrator("backup", by="ops")
    events = [r.tenuto["event"] for r in caplog.records if hasattr(r, "tenuto")]
    assert "orchestrator_paused" in events and "orchestrator_resumed" in events


# -- across processes -------------------------------------------------------------------


def test_an_activity_pause_holds_work_in_other_worker_processes(client, db_url, tmp_path):
    """A standing pause made in this process holds the activity in two worker processes;
    resuming releases it there and every instance completes."""
    from test_crash import WorkerProcess

    log = tmp_path / "crash.log"
    log.touch()
    env = {"CRASH_LOG": str(log), "ACTIVITY_SECONDS": "0"}
    workers = [WorkerProcess(db_url, env) for _ in range(2)]
    try:
        # The worker processes may not have registered it yet.
        client.pause_activity("work", "billing upgrade", by="ops", force=True)
        ids = [client.start("chain", 2) for _ in range(6)]
        for iid in ids:
            wait_for(lambda iid=iid: client.status(iid).held_activities == ("work",), timeout=20)
        assert all(_status(client, iid) is Status.RUNNING for iid in ids)
        assert "start" not in log.read_text()
        resumed_at = time.time()
        client.resume_activity("work", by="ops")
        for iid in ids:
            assert client.wait(iid, timeout=30).output == [1, 2]
        starts = [
            float(line.split()[4]) for line in log.read_text().splitlines() if line[:5] == "start"
        ]
        assert len(starts) == 12 and min(starts) >= resumed_at
        assert {line.split()[3] for line in log.read_text().splitlines()} <= {
            str(w.proc.pid) for w in workers
        }
    finally:
        for w in workers:
            w.stop()
