"""Client.rewind, Client.restart, start(reuse=...), purge(recursive=...) and
terminate(output=...), through a real tenuto worker on each backend."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter

import pytest

import tenuto
from tenuto import Status

app = tenuto.App()

#: Calls of each activity, per instance and input.
calls: Counter[str] = Counter()
_lock = threading.Lock()
#: Instances whose ``flaky`` activity is fixed (it fails until then).
fixed: set[str] = set()


def _count(key: str) -> int:
    with _lock:
        calls[key] += 1
        return calls[key]


@app.activity
def record(key: str) -> str:
    _count(key)
    return f"did {key}"


@app.activity
def flaky(key: str) -> str:
    _count(key)
    if key not in fixed:
        raise RuntimeError(f"{key} is broken")
    return f"fixed {key}"


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
