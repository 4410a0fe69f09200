"""Eager steps: a worker that holds an instance as its last step left it runs the step a
quick activity's result makes due before storing the result, and commits both in one
transaction, but only if the instance is still exactly as that step left it."""

from __future__ import annotations

import threading
import time

import pytest

import tenuto
from tenuto import history as h
from tenuto.status import Status
from tenuto.store import open_store
from tenuto.store.base import InstanceRow, NewActivity, NewMessage

from helpers import wait_for

app = tenuto.App()
gate = threading.Event()


@app.activity
def inc(x: int) -> int:
    return x + 1


@app.activity
def gated(x: int) -> int:
    if not gate.wait(30):
        raise TimeoutError("the test never opened the gate")
    return x + 1


@app.activity
def slow(x: int) -> int:
    time.sleep(0.06)
    return x + 1


@app.orchestrator
def chain(ctx, spec):
    """``spec``: how many calls, or [how many, of which activity]."""
    n, activity = spec if isinstance(spec, list) else (spec, "inc")
    total = 0
    for _ in range(n):
        total = yield ctx.call_activity(activity, total)
    return total


@app.orchestrator
def long_then_gated(ctx, n):
    """``n`` quick activities (a history past the eager steps' unread limit), then one
    that waits for the gate, then an event."""
    total = 0
    for _ in range(n):
        total = yield ctx.call_activity(inc, total)
    total = yield ctx.call_activity(gated, total)
    return [total, (yield ctx.wait_for_event("note"))]


@app.orchestrator
def gated_then_event(ctx, x):
    first = yield ctx.call_activity(inc, x)
    second = yield ctx.call_activity(gated, first)
    note = yield ctx.wait_for_event("note")
    return [second, note]


@pytest.fixture(autouse=True)
def _closed_gate():
    gate.clear()
    yield
    gate.set()


def _types(client: tenuto.Client, iid: str) -> list[str]:
    return [e.type for e in client.history(iid)]


def test_a_warm_worker_takes_results_and_their_steps_in_one_transaction(db_url, start_worker):
    worker = start_worker(app)
    with tenuto.Client(db_url) as client:
        iid = client.start(chain, 20)
        assert client.wait(iid, timeout=30).output == 20
        types = _types(client, iid)
    # The first step runs the usual way (nothing cached yet); every result after it is
    # taken by the worker that ran the step before.
    assert worker.eager_steps >= 15
    assert types.count("TaskCompleted") == 20


def test_eager_steps_write_the_history_a_cold_worker_writes(tmp_path):
    def run(cache_size: int) -> tuple[list[tuple[str, dict]], int]:
        url = f"sqlite:///{tmp_path / f'cache-{cache_size}.db'}"
        with tenuto.Worker(app, url, cache_size=cache_size) as worker, tenuto.Client(url) as c:
            iid = c.start(chain, 8, instance_id="same")
            assert c.wait(iid, timeout=30).output == 8
            return [(e.type, e.data) for e in c.history(iid)], worker.eager_steps

    warm, eager = run(1000)
    cold, none = run(0)
    assert (eager > 0, none) == (True, 0)
    assert warm == cold


@pytest.mark.parametrize("below", [0.05, 0.0])
def test_results_of_longer_activities_are_committed_on_their_own(db_url, start_worker, below):
    worker = start_worker(app, eager_steps_below=below)
    with tenuto.Client(db_url) as client:
        assert client.wait(client.start(chain, [3, "slow"]), timeout=30).output == 3
        if below == 0.0:  # off: not even quick activities
            assert client.wait(client.start(chain, 3), timeout=30).output == 3
    assert worker.eager_steps == 0


def test_eager_steps_below_must_not_be_negative():
    with pytest.raises(ValueError, match="eager_steps_below"):
        tenuto.Worker(app, "sqlite:///:memory:", eager_steps_below=-1)


def test_an_event_that_came_first_is_taken_before_the_result(db_url, start_worker):
    """The result's step would presume nothing else is due; an event raised while the
    activity ran is, so the result goes the usual way, after the event, in order."""
    start_worker(app)
    with tenuto.Client(db_url) as client:
        iid = client.start(gated_then_event, 1)
        wait_for(lambda: "TaskScheduled" in _types(client, iid)[4:], what="the gated activity")
        client.raise_event(iid, "note", "early")
        gate.set()
        assert client.wait(iid, timeout=30).output == [3, "early"]
        types = _types(client, iid)
    gated_done = len(types) - 1 - types[::-1].index("TaskCompleted")
    assert types.index("EventRaised") < gated_done


def test_a_result_for_an_instance_paused_meanwhile_waits_for_the_resume(db_url, start_worker):
    worker = start_worker(app)
    with tenuto.Client(db_url) as client:
        iid = client.start(gated_then_event, 1)
        wait_for(lambda: "TaskScheduled" in _types(client, iid)[4:], what="the gated activity")
        assert client.pause(iid, "hold")
        before = worker.eager_steps
        gate.set()
        wait_for(lambda: worker.running_activities == 0, what="the activity to finish")
        # The result is stored, not stepped: the history ends with the pause.
        assert client.status(iid).runtime_status is Status.PAUSED
        assert _types(client, iid)[-1] == "ExecutionSuspended"
        assert worker.eager_steps == before
        client.resume(iid)
        client.raise_event(iid, "note", "late")
        assert client.wait(iid, timeout=30).output == [3, "late"]


def test_a_long_history_paused_under_a_quick_activity_keeps_its_replayer(db_url, start_worker):
    """Past the unread limit an eager step reads its instance first: a pause that came
    while the activity ran sends the result to the inbox without spending the cached
    replayer, so the step after the resume does not replay the whole history."""
    worker = start_worker(app, eager_steps_below=60)  # the gated one counts as quick
    with tenuto.Client(db_url) as client:
        iid = client.start(long_then_gated, 400)  # 1,200 events and more
        wait_for(lambda: worker.running_activities == 1 and _gated_started(client, iid))
        assert client.pause(iid, "hold")
        gate.set()
        wait_for(lambda: worker.running_activities == 0, what="the gated activity to end")
        wait_for(lambda: worker._outcomes.empty(), what="its result to be taken")
        settled = client.history(iid)
        assert settled[-1].type == "ExecutionSuspended"
        assert worker._steps.cache.row_of(iid) is not None
        client.resume(iid)
        client.raise_event(iid, "note", "n")
        assert client.wait(iid, timeout=30).output == [401, "n"]


def test_a_replayer_spent_by_a_stale_eager_step_is_rebuilt_while_paused(db_url, start_worker):
    """A short history is not read first: the eager step runs, turns out stale (the pause
    came during the activity), and spends the cached replayer; the idle worker rebuilds
    it from the history while the instance is paused."""
    worker = start_worker(app, eager_steps_below=60)
    with tenuto.Client(db_url) as client:
        iid = client.start(gated_then_event, 1)
        wait_for(lambda: worker.running_activities == 1 and _gated_started(client, iid))
        assert client.pause(iid, "hold")
        gate.set()
        wait_for(lambda: worker.running_activities == 0, what="the gated activity to end")
        row = wait_for(lambda: worker._steps.cache.row_of(iid), what="the rebuilt replayer")
        assert (row.status, row.history_len) == (Status.PAUSED, len(client.history(iid)))
        assert worker.eager_steps == 1  # only the first activity's, before the pause
        client.resume(iid)
        client.raise_event(iid, "note", "n")
        assert client.wait(iid, timeout=30).output == [3, "n"]


def _gated_started(client: tenuto.Client, iid: str) -> bool:
    events = client.history(iid)
    return any(e.type == "TaskScheduled" and e.data["name"] == "gated" for e in events)


# -- the store's side: which instances a result's step may take ---------------------


def _setup(db_url: str, **instance: object) -> tuple[int, str]:
    """One RUNNING instance 'i' with 3 history events and one activity leased as 'act'.
    Returns the activity id and the activity lease."""
    store = open_store(db_url)
    now = time.time()
    row = InstanceRow(
        instance_id="i",
        name="chain",
        status=Status.RUNNING,
        execution_id="e1",
        created_at=now,
        updated_at=now,
        history_len=3,
    )
    for key, value in instance.items():
        setattr(row, key, value)
    try:
        with store.transaction() as tx:
            tx.insert_instances([row])
            tx.insert_activities([NewActivity("i", "e1", 1, "inc", "1", None, now, False)])
            (activity,) = tx.claim_activities(["inc"], now, 10, "act", now + 60)
        return activity.id, "act"
    finally:
        store.close()


def _claim(db_url: str, items: list[tuple[str, str, int, int, str]]) -> dict[str, bool]:
    store = open_store(db_url)
    try:
        now = time.time()
        return store.run(lambda tx: tx.claim_for_results(items, now, "worker", now + 30)())
    finally:
        store.close()


def test_claim_for_results_leases_an_instance_as_left_and_takes_its_activity(db_url):
    aid, lease = _setup(db_url)
    assert _claim(db_url, [("i", "e1", 3, aid, lease)]) == {"i": True}
    store = open_store(db_url)
    try:
        row = store.read(lambda r: r.get_instance("i"))
        assert row is not None and (row.lease, row.claims) == ("worker", 0)
        # The activity is gone: its result is the worker's to write.
        assert _claim(db_url, [("i", "e1", 3, aid, lease)]) == {}
    finally:
        store.close()


@pytest.mark.parametrize(
    ("instance", "item"),
    [
        ({}, ("i", "e1", 4, None, None)),  # a step was taken since
        ({}, ("i", "e0", 3, None, None)),  # another execution
        ({"status": Status.PAUSED}, ("i", "e1", 3, None, None)),
        ({"lease": "other", "lease_until": 4102444800.0}, ("i", "e1", 3, None, None)),
        ({"next_due": time.time() - 1}, ("i", "e1", 3, None, None)),  # due for another reason
    ],
    ids=["history-moved", "other-execution", "paused", "leased", "due"],
)
def test_claim_for_results_leaves_an_instance_that_changed(db_url, instance, item):
    aid, lease = _setup(db_url, **instance)
    iid, eid, n, _, _ = item
    assert _claim(db_url, [(iid, eid, n, aid, lease)]) == {}
    store = open_store(db_url)
    try:
        # Its activity is untouched, for the usual delivery.
        done = h.Event(h.TASK_COMPLETED, time.time(), {"task_id": 1, "result": 2})
        result = (aid, lease, NewMessage("i", "e1", done, time.time()))
        assert store.run(lambda tx: tx.deliver_results([result], time.time())()) == {aid}
    finally:
        store.close()


def test_claim_for_results_leaves_an_instance_with_a_due_message(db_url):
    aid, lease = _setup(db_url)
    store = open_store(db_url)
    try:
        with store.transaction() as tx:
            event = h.Event(h.EVENT_RAISED, time.time(), {"name": "x", "data": None})
            tx.add_messages([NewMessage("i", None, event, time.time() - 1)])
    finally:
        store.close()
    assert _claim(db_url, [("i", "e1", 3, aid, lease)]) == {}


def test_as_left_reads_the_same_condition_without_a_lease(db_url):
    _setup(db_url)
    store = open_store(db_url)
    try:
        now = time.time()
        items = [("i", "e1", 3), ("i", "e1", 4), ("missing", "e1", 3)]
        assert store.read(lambda r: r.as_left(items, now)) == {"i"}
        with store.transaction() as tx:
            tx.update_instance("i", {"status": Status.PAUSED})
        assert store.read(lambda r: r.as_left(items, now)) == set()
    finally:
        store.close()


def test_claim_for_results_reports_an_activity_whose_lease_is_gone(db_url):
    aid, _ = _setup(db_url)
    assert _claim(db_url, [("i", "e1", 3, aid, "an expired lease")]) == {"i": False}
