"""Client.rewind, Client.restart, start(reuse=...), purge(recursive=...) and
terminate(output=...), through a real tenuto worker on each backend."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest

import tenuto
from tenuto import Status
from tenuto._runner import Claimed, ReplayCache, StepRunner
from tenuto.clock import SYSTEM_CLOCK
from tenuto.store import open_store
from tenuto.store.base import Store

from helpers import Gate, take_step, wait_for

app = tenuto.App()
#: For tests that take steps by hand: orchestrators, and a worker for the activities.
steps = tenuto.App()
acts = tenuto.App()

#: Calls of each activity, per instance and input.
calls: Counter[str] = Counter()
_lock = threading.Lock()
#: Instances whose ``flaky`` activity is fixed (it fails until then).
fixed: set[str] = set()


def _count(key: str) -> int:
    with _lock:
        calls[key] += 1
        return calls[key]


# The orchestrations check the names they call: every app knows the activities.
@steps.activity
@acts.activity
@app.activity
def record(key: str) -> str:
    _count(key)
    return f"did {key}"


@steps.activity
@acts.activity
@app.activity
def flaky(key: str) -> str:
    _count(key)
    if key not in fixed:
        raise RuntimeError(f"{key} is broken")
    return f"fixed {key}"


@steps.orchestrator
@app.orchestrator
def two_steps(ctx, key):
    a = yield ctx.call_activity(record, f"{key}/before")
    b = yield ctx.call_activity(flaky, key)
    return [a, b]


@app.orchestrator
def fails_in_child(ctx, key):
    a = yield ctx.call_activity(record, f"{key}/parent")
    b = yield ctx.call_sub_orchestrator(two_steps, key, instance_id=f"{ctx.instance_id}-child")
    return [a, b]


@app.orchestrator
def waits(ctx, _):
    return (yield ctx.wait_for_event("go"))


@app.orchestrator
def parent_of_two(ctx, _):
    a = yield ctx.call_sub_orchestrator(echo, 1, instance_id=f"{ctx.instance_id}-a")
    b = yield ctx.call_sub_orchestrator(parent_of_one, 2, instance_id=f"{ctx.instance_id}-b")
    return [a, b]


@app.orchestrator
def parent_of_one(ctx, x):
    return (yield ctx.call_sub_orchestrator(echo, x, instance_id=f"{ctx.instance_id}-c"))


@app.orchestrator
def echo(ctx, x):
    return x


def _key() -> str:
    """A key for the calls of one test (the counters are shared by both backends)."""
    return uuid.uuid4().hex[:8]


def test_rewind_reruns_only_the_failed_activity(client, start_worker):
    start_worker(app)
    key = _key()
    iid = client.start(two_steps, key)
    assert client.wait(iid, timeout=10).runtime_status is Status.FAILED
    fixed.add(key)
    client.rewind(iid, "fixed the bug", by="ops")
    st = client.wait(iid, timeout=10)
    assert st.runtime_status is Status.COMPLETED, st.failure
    assert st.output == [f"did {key}/before", f"fixed {key}"] and st.failure is None
    assert calls[f"{key}/before"] == 1  # what succeeded kept its result
    assert calls[key] == 2
    rewound = [e for e in client.history(iid) if e.type == "ExecutionRewound"]
    assert len(rewound) == 1
    assert rewound[0].data == {"reason": "fixed the bug", "by": "ops"}


def test_rewind_rewinds_failed_sub_orchestrations(client, start_worker):
    start_worker(app)
    key = _key()
    iid = client.start(fails_in_child, key, instance_id="rw2")
    st = client.wait(iid, timeout=10)
    assert st.runtime_status is Status.FAILED
    assert client.status("rw2-child").runtime_status is Status.FAILED
    fixed.add(key)
    client.rewind(iid)
    st = client.wait(iid, timeout=10)
    assert st.runtime_status is Status.COMPLETED, st.failure
    assert st.output == [f"did {key}/parent", [f"did {key}/before", f"fixed {key}"]]
    assert client.status("rw2-child").runtime_status is Status.COMPLETED
    assert calls[f"{key}/parent"] == 1 and calls[f"{key}/before"] == 1 and calls[key] == 2
    child_events = [e for e in client.history("rw2-child") if e.type == "ExecutionRewound"]
    assert child_events and child_events[0].data["by"] == "tester"


def test_rewind_refuses_what_did_not_fail(client, start_worker):
    start_worker(app)
    live = client.start(waits)
    with pytest.raises(tenuto.InstanceNotFinished):
        client.rewind(live)
    client.raise_event(live, "go", 1)
    client.wait(live, timeout=10)
    with pytest.raises(tenuto.InstanceFinished, match="did not fail"):
        client.rewind(live)
    with pytest.raises(tenuto.InstanceNotFound):
        client.rewind("no-such-instance")
    with pytest.raises(ValueError, match="reason"):
        client.rewind(live, "x" * 5000)
    assert [e.type for e in client.history(live)][-1] == "ExecutionCompleted"


def test_restart_under_the_same_or_a_new_id(client, start_worker):
    start_worker(app)
    iid = client.start(echo, {"n": 1}, instance_id="rs1", version="2", tags={"t": "x"})
    client.wait(iid, timeout=10)
    first_history = client.history(iid)
    assert client.restart(iid) == iid
    st = client.wait(iid, timeout=10)
    assert st.output == {"n": 1} and st.version == "2" and st.tags == {"t": "x"}
    assert client.history(iid)[0].timestamp >= first_history[-1].timestamp  # a new run
    other = client.restart(iid, new_instance_id=True)
    assert other != iid
    st = client.wait(other, timeout=10)
    assert (st.name, st.input, st.output, st.tags) == ("echo", {"n": 1}, {"n": 1}, {"t": "x"})
    assert client.status(iid).runtime_status is Status.COMPLETED  # the old one stays
    live = client.start(waits)
    with pytest.raises(tenuto.InstanceNotFinished):
        client.restart(live)
    with pytest.raises(tenuto.InstanceNotFound):
        client.restart("no-such-instance")


def test_start_replaces_an_instance_in_a_reuse_status(client, start_worker):
    start_worker(app)
    done = client.start(echo, 1, instance_id="ru1")
    client.wait(done, timeout=10)
    with pytest.raises(tenuto.InstanceExists):
        client.start(echo, 2, instance_id="ru1")
    with pytest.raises(tenuto.InstanceExists):
        client.start(echo, 2, instance_id="ru1", reuse=[Status.FAILED])
    client.start(echo, 2, instance_id="ru1", reuse=[Status.COMPLETED])
    assert client.wait("ru1", timeout=10).output == 2
    live = client.start(waits, instance_id="ru2")
    client.start(echo, 3, instance_id=live, reuse=["running", "pending"], by="deployer")
    assert client.wait(live, timeout=10).output == 3
    assert "ExecutionTerminated" not in [e.type for e in client.history(live)]  # purged
    with pytest.raises(ValueError, match="unknown status"):
        client.start(echo, 4, instance_id=live, reuse=["DONE"])


def test_purge_recursive_deletes_the_sub_orchestrations(client, start_worker):
    start_worker(app)
    iid = client.start(parent_of_two, instance_id="pr1")
    assert client.wait(iid, timeout=10).output == [1, 2]
    client.purge("pr1-b")  # not recursive: its child stays
    assert client.status("pr1-b-c").runtime_status is Status.COMPLETED
    client.purge(iid, recursive=True)
    for gone in ("pr1", "pr1-a"):
        with pytest.raises(tenuto.InstanceNotFound):
            client.status(gone)
    assert client.status("pr1-b-c").runtime_status is Status.COMPLETED  # no parent left
    again = client.start(parent_of_two, instance_id="pr2")
    client.wait(again, timeout=10)
    live = client.start(waits)
    ids = ["pr2", live, "unknown", "not/valid"]
    assert client.purge_many(instance_ids=ids, recursive=True) == 4  # pr2 and 3 below it
    assert not client.status(live).is_terminal  # live: passed over
    assert client.purge_many(instance_ids=[]) == 0


def test_terminate_with_an_output(client, start_worker):
    start_worker(app)
    iid = client.start(waits)
    client.terminate(iid, "no longer needed", output={"cancelled": True})
    st = client.wait(iid, timeout=10)
    assert st.runtime_status is Status.TERMINATED and st.output == {"cancelled": True}
    with pytest.raises(TypeError, match="JSON value"):
        client.terminate(client.start(waits), output=object())


def test_async_client_rewinds_and_restarts(db_url, start_worker):
    start_worker(app)

    async def main() -> None:
        async with tenuto.AsyncClient(db_url) as ac:
            key = _key()
            iid = await ac.start(two_steps, key)
            assert (await ac.wait(iid, timeout=10)).runtime_status is Status.FAILED
            fixed.add(key)
            await ac.rewind(iid, "retry")
            assert (await ac.wait(iid, timeout=10)).output == [f"did {key}/before", f"fixed {key}"]
            again = await ac.restart(iid, new_instance_id=True)
            assert (await ac.wait(again, timeout=10)).runtime_status is Status.COMPLETED

    asyncio.run(main())


# -- rewinding what a failure left behind ------------------------------------------------

gate = Gate()


@app.activity
def held(key: str) -> str:
    _count(key)
    gate.wait(key)
    return f"held {key}"


@app.orchestrator
def fan_out_fails_fast(ctx, key):
    return (
        yield ctx.when_all(
            [
                ctx.call_activity(flaky, key),
                ctx.call_activity(held, f"{key}/held"),
                ctx.create_timer(timedelta(seconds=0.5)),
            ]
        )
    )


def test_rewind_runs_again_the_work_the_failure_cut_short(client, start_worker):
    """An activity still running and a timer still pending when the instance failed
    lost their rows with the failure: the rewind schedules them again (before, the
    instance waited for them forever)."""
    start_worker(app)
    key = _key()
    iid = client.start(fan_out_fails_fast, key)
    assert client.wait(iid, timeout=10).runtime_status is Status.FAILED
    wait_for(lambda: f"{key}/held" in gate.waiting, what="the held activity to run")
    gate.open(f"{key}/held")  # it finishes after the failure: its result is dropped
    fixed.add(key)
    client.rewind(iid)
    st = client.wait(iid, timeout=10)
    assert st.runtime_status is Status.COMPLETED, st.failure
    assert st.output == [f"fixed {key}", f"held {key}/held", None]
    assert calls[f"{key}/held"] == 2


def _running(client: tenuto.Client, instance_id: str) -> bool:
    page = client.query(id_prefix=instance_id, status=Status.RUNNING)
    return any(s.instance_id == instance_id for s in page.items)


@app.orchestrator
def waits_for_child(ctx, _):
    return (yield ctx.call_sub_orchestrator(waits, None, instance_id=f"{ctx.instance_id}-w"))


def test_rewind_starts_again_a_terminated_sub_orchestration(client, start_worker):
    """A parent that failed because its child was terminated: the rewind runs the
    child again (before, the parent waited for the terminated child forever)."""
    start_worker(app)
    iid = client.start(waits_for_child, instance_id="tc1")
    wait_for(lambda: _running(client, "tc1-w"), what="the child")
    client.terminate("tc1-w", "wrong input")
    assert client.wait(iid, timeout=10).runtime_status is Status.FAILED
    client.rewind(iid)
    wait_for(lambda: _running(client, "tc1-w"), what="the child to run again")
    client.raise_event("tc1-w", "go", "second try")
    st = client.wait(iid, timeout=10)
    assert st.runtime_status is Status.COMPLETED and st.output == "second try", st.failure


# -- workers taking turns: the steps are taken by hand, the activities by a worker -------

_leases = itertools.count()


@steps.orchestrator
def child_and_call(ctx, key):
    child = ctx.call_sub_orchestrator("go_child", key, instance_id=f"{ctx.instance_id}-go")
    return (yield ctx.when_all([child, ctx.call_activity(flaky, key)]))


@steps.orchestrator
def go_child(ctx, _):
    return (yield ctx.wait_for_event("go"))


def _runner() -> StepRunner:
    return StepRunner(steps, ReplayCache(10), SYSTEM_CLOCK)


def _steps_until_finished(store: Store, runner: StepRunner, client: tenuto.Client, iid: str):
    def finished() -> bool:
        take_step(store, runner)
        return client.status(iid).is_terminal

    wait_for(finished, what=f"{iid} to finish")
    return client.status(iid)


def test_a_worker_that_held_the_instance_before_its_failure_replays_it_after_a_rewind(
    db_url, client, start_worker
):
    """Worker one took the steps before the failure and keeps the instance in memory;
    worker two took the step that failed. After the rewind, one's memory of the
    instance is stale (the history changed under it): it must replay the history
    (before, it believed the failed call still running, and the instance waited
    forever)."""
    start_worker(acts)
    store = open_store(db_url)
    one, two = _runner(), _runner()
    key = _key()
    iid = client.start(two_steps, key)
    wait_for(lambda: take_step(store, one), what="the first step")
    wait_for(lambda: take_step(store, one), what="the step on the first result")
    assert iid in one.cache
    wait_for(lambda: take_step(store, two), what="the step on the failure")
    assert client.status(iid).runtime_status is Status.FAILED
    fixed.add(key)
    client.rewind(iid)
    st = _steps_until_finished(store, one, client, iid)
    assert st.runtime_status is Status.COMPLETED, st.failure
    assert st.output == [f"did {key}/before", f"fixed {key}"] and calls[f"{key}/before"] == 1
    store.close()


def test_rewind_delivers_again_a_child_result_the_failure_dropped(db_url, client, start_worker):
    """A child finished while the step that failed its parent ran: its result reached
    the parent's inbox after the step had read it, and the failure dropped it. The
    rewind hands it over again (before, the parent waited for it forever)."""
    store = open_store(db_url)
    one, two = _runner(), _runner()
    key = _key()
    iid = client.start(child_and_call, key, instance_id=f"cc-{key}")
    assert take_step(store, one) == 1  # the parent starts its child and calls "flaky"
    assert take_step(store, one) == 1  # the child waits for its event
    start_worker(acts)  # "flaky" fails
    # The parent's step on the failure: claimed and run, not committed yet...
    lease = f"test:{next(_leases)}"

    def claim() -> list[Claimed]:
        with store.transaction() as tx:
            return two.claim(tx, time.time(), 10, lease, time.time() + 30)

    claimed = wait_for(claim, what="the parent's step on the failure")
    assert [c.row.instance_id for c in claimed] == [iid]
    failing = [two.run(c) for c in claimed]
    # ...while the child finishes,
    client.raise_event(f"{iid}-go", "go", "child done")
    wait_for(lambda: take_step(store, one), what="the child's last step")
    assert client.status(f"{iid}-go").runtime_status is Status.COMPLETED
    # and then it commits: the parent fails, and the child's result goes with it.
    with store.transaction() as tx:
        assert two.commit(tx, failing, time.time()).count == 1
    assert client.status(iid).runtime_status is Status.FAILED
    fixed.add(key)
    client.rewind(iid)
    st = _steps_until_finished(store, one, client, iid)
    assert st.runtime_status is Status.COMPLETED, st.failure
    assert st.output == ["child done", f"fixed {key}"]
    store.close()
