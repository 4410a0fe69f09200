"""Client operations: start, query and paging, history, purge, wait, and AsyncClient."""

from __future__ import annotations

import asyncio
import inspect
import typing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import tenuto
from tenuto import Status

from helpers import wait_for

app = tenuto.App()


@app.activity
def inc(x: int) -> int:
    return x + 1


@app.orchestrator
def one_step(ctx, x):
    return (yield ctx.call_activity(inc, x))


@app.orchestrator
def waits(ctx, _):
    return (yield ctx.wait_for_event("go"))


@app.orchestrator
def loops(ctx, n):
    if n < 2:
        yield ctx.call_activity(inc, n)
        ctx.continue_as_new(n + 1)
        return None
    return n


def test_version_and_tags_are_stored_kept_across_continue_as_new_and_validated(
    client, start_worker
):
    start_worker(app)
    tags = {"team": "billing", "ticket": "OPS-12 é", "empty": ""}
    iid = client.start(loops, 0, version="1.2", tags=tags)
    st = client.wait(iid, timeout=10)
    assert st.output == 2 and st.version == "1.2" and st.tags == tags
    assert st.to_json()["version"] == "1.2" and st.to_json()["tags"] == tags
    assert client.query(id_prefix=iid).items[0].tags == tags
    plain = client.status(client.start(waits))
    assert plain.version is None and plain.tags is None
    assert client.status(client.start(waits, tags={})).tags is None
    ids = client.start_many(waits, [1, 2], version="3", tags={"batch": "b"})
    assert {(s.version, s.tags["batch"]) for s in map(client.status, ids)} == {("3", "b")}
    bad: list[tuple[dict[str, object], type[Exception], str]] = [
        ({"version": ""}, ValueError, "invalid version"),
        ({"version": "a\x00b"}, ValueError, "invalid version"),
        ({"version": 2}, TypeError, "version must be a string"),
        ({"tags": ["a"]}, TypeError, "mapping"),
        ({"tags": {"k": 1}}, TypeError, "tag 'k' must be a string"),
        ({"tags": {"": "v"}}, ValueError, "invalid tag key"),
        ({"tags": {"k\n": "v"}}, ValueError, "invalid tag key"),
        ({"tags": {"k": "v\x00"}}, ValueError, "invalid value of tag 'k'"),
        ({"tags": {"k": "v" * 1025}}, ValueError, "at most 1024"),
        ({"tags": {str(i): "" for i in range(65)}}, ValueError, "too many tags"),
    ]
    for kwargs, kind, message in bad:
        with pytest.raises(kind, match=message):
            client.start(waits, **kwargs)
    assert len(client.query(limit=1000).items) == 5  # nothing of the refused starts


def test_start_with_caller_chosen_id_and_status_fields(client, start_worker):
    start_worker(app)
    iid = client.start(one_step, 41, instance_id="answer")
    assert iid == "answer"
    st = client.wait(iid, timeout=10)
    assert (st.instance_id, st.name, st.runtime_status, st.input, st.output) == (
        "answer",
        "one_step",
        Status.COMPLETED,
        41,
        42,
    )
    assert st.failure is None and st.pause is None and st.parent_instance_id is None
    assert st.created_at <= st.updated_at
    assert st.to_json()["runtime_status"] == "COMPLETED"


def test_start_at_delays_the_first_step(client, start_worker):
    start_worker(app)
    at = datetime.now(UTC) + timedelta(seconds=0.4)
    iid = client.start(one_step, 1, start_at=at)
    assert client.status(iid).runtime_status is Status.PENDING
    st = client.wait(iid, timeout=10)
    started = next(e for e in client.history(iid) if e.type == "ExecutionStarted")
    assert started.timestamp >= at
    assert st.output == 2


def test_history_lists_events_oldest_first(client, start_worker):
    start_worker(app)
    iid = client.start(one_step, 1)
    client.wait(iid, timeout=10)
    history = client.history(iid)
    assert [e.type for e in history] == [
        "OrchestratorStarted",
        "ExecutionStarted",
        "TaskScheduled",
        "OrchestratorStarted",
        "TaskCompleted",
        "ExecutionCompleted",
    ]
    assert [e.sequence for e in history] == list(range(6))
    assert history[2].data == {"task_id": 0, "name": "inc", "input": 1}
    assert history[4].data == {"task_id": 0, "result": 2}
    steps = [e.timestamp for e in history if e.type == "OrchestratorStarted"]
    assert steps == sorted(steps)


def test_query_filters_and_pages(client, start_worker):
    ids = [client.start(waits, None, instance_id=f"q-{i:02d}") for i in range(7)]
    client.start(one_step, 1, instance_id="other")
    page = client.query(name="waits", limit=3)
    assert [s.instance_id for s in page.items] == ["q-06", "q-05", "q-04"]
    seen = [s.instance_id for s in page.items]
    while page.next_cursor:
        page = client.query(name="waits", limit=3, cursor=page.next_cursor)
        seen += [s.instance_id for s in page.items]
    assert seen == list(reversed(ids))
    assert [s.instance_id for s in client.query(id_prefix="q-0", limit=100).items] == seen
    assert client.query(id_prefix="zzz").items == []
    assert {s.instance_id for s in client.query(status="PENDING").items} == {*ids, "other"}


def test_query_by_creation_time(client):
    first = client.start(waits, None)
    middle_time = datetime.now(UTC)
    wait_for(lambda: datetime.now(UTC) > middle_time)
    second = client.start(waits, None)
    assert [s.instance_id for s in client.query(created_from=middle_time).items] == [second]
    assert [s.instance_id for s in client.query(created_to=middle_time).items] == [first]


def test_purge_and_purge_many(client, start_worker):
    start_worker(app)
    done = [client.start(one_step, i) for i in range(3)]
    live = client.start(waits, None)
    for iid in done:
        client.wait(iid, timeout=10)
    client.purge(done[0])
    with pytest.raises(tenuto.InstanceNotFound):
        client.status(done[0])
    with pytest.raises(tenuto.InstanceNotFound):
        client.history(done[0])
    assert client.purge_many() == 2  # only finished instances are purged
    assert client.status(live).runtime_status is not Status.COMPLETED
    assert client.purge_many() == 0


def test_terminate_ends_a_running_instance(client, start_worker):
    start_worker(app)
    iid = client.start(waits, None)
    wait_for(lambda: client.status(iid).runtime_status is Status.RUNNING)
    client.terminate(iid, "not needed", by="ops")
    st = client.status(iid)
    assert st.runtime_status is Status.TERMINATED
    assert st.failure is not None and st.failure.message == "not needed (by ops)"
    with pytest.raises(tenuto.InstanceFinished):
        client.terminate(iid)
    event = client.history(iid)[-1]
    assert (event.type, event.data) == (
        "ExecutionTerminated",
        {"reason": "not needed", "by": "ops"},
    )


def test_wait_times_out_with_a_clear_error(client):
    iid = client.start(waits, None)
    with pytest.raises(tenuto.WaitTimeout, match="PENDING"):
        client.wait(iid, timeout=0.05)


def test_wait_many_returns_every_final_status_in_the_order_given(client, start_worker):
    start_worker(app)
    quick = client.start_many(one_step, [1, 2, 3])
    slow = client.start(waits, None)
    client.pause(slow, "held")
    ids = [quick[2], slow, quick[0], quick[2], quick[1]]
    # The paused one is not finished: the wait lasts until its event, after a resume.
    with pytest.raises(tenuto.WaitTimeout, match=r"1 of 4 instances are still unfinished"):
        client.wait_many(ids, timeout=0.3)
    client.resume(slow)
    client.raise_event(slow, "go", "late")
    finals = client.wait_many(ids, timeout=10)
    assert [f.instance_id for f in finals] == ids
    assert [f.output for f in finals] == [4, "late", 2, 4, 3]
    assert all(f.runtime_status is Status.COMPLETED for f in finals)
    assert client.wait_many([], timeout=1) == []


def test_wait_many_collects_more_instances_than_one_read_covers(client, start_worker):
    start_worker(app)
    ids = client.start_many(one_step, range(150))
    held = client.start(waits, None)
    # Awaited in reverse, with an unfinished one in the middle of the second window.
    order = [*ids[::-1][:100], held, *ids[::-1][100:]]
    assert len(client.wait_many(ids, timeout=30)) == 150
    with pytest.raises(tenuto.WaitTimeout, match=r"1 of 151 instances"):
        client.wait_many(order, timeout=0.2)
    client.raise_event(held, "go", "x")
    finals = client.wait_many(order, timeout=10)
    assert [f.output for f in finals] == [*range(150, 50, -1), "x", *range(50, 0, -1)]


def test_wait_many_names_an_unknown_instance_at_once(client):
    iid = client.start(waits, None)
    with pytest.raises(tenuto.InstanceNotFound, match="nope"):
        client.wait_many([iid, "nope"], timeout=30)


def test_async_wait_many(db_url, start_worker):
    start_worker(app)

    async def main() -> list[tenuto.InstanceStatus]:
        async with tenuto.AsyncClient(db_url) as c:
            ids = [await c.start("one_step", n) for n in (10, 20)]
            with pytest.raises(tenuto.InstanceNotFound):
                await c.wait_many([*ids, "missing"])
            return await c.wait_many(ids, timeout=10)

    assert [f.output for f in asyncio.run(main())] == [11, 21]


def test_async_client_has_the_same_operations(db_url, start_worker):
    start_worker(app)

    async def main() -> None:
        async with tenuto.AsyncClient(db_url, actor="async") as c:
            iid = await c.start("waits", None, instance_id="a-1", version="v", tags={"a": "b"})
            assert (await c.status(iid)).tags == {"a": "b"}
            assert await c.pause(iid, "async pause") is True
            st = await c.status(iid)
            assert st.runtime_status is Status.PAUSED and st.pause.by == "async"
            assert (await c.query(status=Status.PAUSED)).items[0].instance_id == iid
            assert await c.resume(iid) is True
            await c.raise_event(iid, "go", "from async")
            final = await c.wait(iid, timeout=10)
            assert final.output == "from async"
            assert [e.type for e in await c.history(iid)][-1] == "ExecutionCompleted"
            other = await c.start("waits")
            assert await c.pause_many(id_prefix=other) == 1
            assert await c.resume_many(id_prefix=other) == 1
            await c.terminate(other)
            await c.purge(iid)
            assert await c.purge_many() == 1

    asyncio.run(main())


def test_async_client_methods_have_the_client_signatures():
    """Every public method of Client is a coroutine method of AsyncClient with the same
    parameters, annotations and documentation, so that type checkers and editors see
    them, and the two cannot drift apart."""
    methods = [
        name
        for name, _ in inspect.getmembers(tenuto.Client, inspect.isfunction)
        if not name.startswith("_")
    ]
    assert {"start", "query", "pause_many", "wait", "wait_many", "close"} <= set(methods)
    for name in methods:
        sync, coro = getattr(tenuto.Client, name), getattr(tenuto.AsyncClient, name)
        assert inspect.iscoroutinefunction(coro), name
        assert inspect.signature(coro) == inspect.signature(sync), name
        assert typing.get_type_hints(coro) == typing.get_type_hints(sync), name
        assert not any(
            p.kind is p.VAR_KEYWORD and p.annotation in ("Any", Any)
            for p in inspect.signature(coro).parameters.values()
        ), name
    for name in ("query", "pause_many", "start"):
        assert getattr(tenuto.AsyncClient, name).__doc__ == getattr(tenuto.Client, name).__doc__
    init = inspect.signature(tenuto.AsyncClient.__init__)
    assert init == inspect.signature(tenuto.Client.__init__)


def test_start_many_creates_all_or_none(client, start_worker):
    start_worker(app)
    ids = client.start_many(one_step, [1, 2, 3], instance_ids=["m1", "m2", "m3"])
    assert ids == ["m1", "m2", "m3"]
    assert [client.wait(i, timeout=10).output for i in ids] == [2, 3, 4]
    random_ids = client.start_many("one_step", range(5))
    assert len(set(random_ids)) == 5
    with pytest.raises(tenuto.InstanceExists, match="m2"):
        client.start_many(one_step, [7, 8], instance_ids=["m4", "m2"])
    with pytest.raises(tenuto.InstanceNotFound):
        client.status("m4")  # nothing of the failed batch was written
    with pytest.raises(ValueError, match="distinct"):
        client.start_many(one_step, [1, 2], instance_ids=["x", "x"])
    with pytest.raises(TypeError, match="set"):
        client.start_many(one_step, [1, {2}])
    assert client.start_many(one_step, []) == []
