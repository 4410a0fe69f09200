"""The replay cache: warm and cold workers agree; stale entries are detected."""

from __future__ import annotations

import time

import tenuto
from tenuto import _control
from tenuto._runner import ReplayCache, StepRunner
from tenuto.clock import SYSTEM_CLOCK
from tenuto.store import open_store

from helpers import take_step

app = tenuto.App()


@app.activity
def square(x: int) -> int:
    return x * x


@app.orchestrator
def mixed(ctx, n):
    total = 0
    for i in range(n):
        total += yield ctx.call_activity(square, i)
        ctx.set_custom_status(total)
    parts = yield ctx.when_all([ctx.call_activity(square, i) for i in range(3)])
    note = yield ctx.wait_for_event("note")
    return {"total": total, "parts": parts, "note": note, "id": ctx.new_uuid()}


@app.orchestrator
def collector(ctx, n):
    got = []
    for _ in range(n):
        got.append((yield ctx.wait_for_event("item")))
    return got


def _shape(client: tenuto.Client, iid: str) -> list[tuple[str, dict]]:
    """History without what differs between runs: timestamps, and the uuid an execution
    derives from its own random execution id."""
    shape = []
    for e in client.history(iid):
        data = dict(e.data)
        if isinstance(data.get("result"), dict) and "id" in data["result"]:
            data["result"] = {k: v for k, v in data["result"].items() if k != "id"}
        shape.append((e.type, data))
    return shape


def _run_mixed(db_url: str, cache_size: int) -> list[tuple[str, dict]]:
    with tenuto.Worker(app, db_url, cache_size=cache_size), tenuto.Client(db_url) as c:
        iid = c.start(mixed, 4, instance_id="same-id")
        while not any(e.type == "TaskCompleted" and e.data["task_id"] == 6 for e in c.history(iid)):
            time.sleep(0.005)
        c.raise_event(iid, "note", "hello")
        st = c.wait(iid, timeout=10)
        assert st.output["total"] == 14 and st.output["note"] == "hello"
        return _shape(c, iid)


def test_cold_and_warm_workers_write_the_same_history(tmp_path):
    warm = _run_mixed(f"sqlite:///{tmp_path / 'warm.db'}", cache_size=1000)
    cold = _run_mixed(f"sqlite:///{tmp_path / 'cold.db'}", cache_size=0)
    assert warm == cold


def _runner(capacity: int) -> StepRunner:
    return StepRunner(app, ReplayCache(capacity), SYSTEM_CLOCK)


def test_a_cache_behind_the_stored_history_catches_up(db_url):
    """Two workers take turns on one instance: each one's cached state is behind the
    history the other wrote, and must catch up rather than replay or diverge."""
    store = open_store(db_url)
    one, two = _runner(10), _runner(10)
    with tenuto.Client(db_url) as c:
        with store.transaction() as tx:
            _control.start(
                tx, name="collector", inputs=[("turns", "4")], start_at=None, now=time.time()
            )
        assert take_step(store, one) == 1
        for i, runner in enumerate([two, one, two, one]):
            c.raise_event("turns", "item", i)
            assert take_step(store, runner) == 1
        assert c.status("turns").output == [0, 1, 2, 3]
        assert len(one.cache) == 0  # it finished the instance, so it evicted it
        reference = _runner(10)
        with store.transaction() as tx:
            _control.start(
                tx, name="collector", inputs=[("alone", "4")], start_at=None, now=time.time()
            )
        take_step(store, reference)
        for i in range(4):
            c.raise_event("alone", "item", i)
            take_step(store, reference)
        assert _shape(c, "turns") == _shape(c, "alone")
    store.close()


def test_a_stale_cache_entry_is_detected_and_the_instance_replayed(db_url):
    """A worker holds a live instance in memory; the instance is terminated, purged and
    started again under the same id. The cached state must not leak into the new one."""
    store = open_store(db_url)
    runner = _runner(10)
    with tenuto.Client(db_url) as c:
        c.start(collector, 2, instance_id="reused")
        take_step(store, runner)
        c.raise_event("reused", "item", "old")
        take_step(store, runner)
        assert len(runner.cache) == 1  # holds the old execution, one item received
        c.terminate("reused")
        c.purge("reused")
        c.start(collector, 2, instance_id="reused")
        take_step(store, runner)
        c.raise_event("reused", "item", "new-1")
        take_step(store, runner)
        c.raise_event("reused", "item", "new-2")
        take_step(store, runner)
        assert c.status("reused").output == ["new-1", "new-2"]
    store.close()


def test_cache_is_bounded_and_least_recently_used_first_out(db_url):
    store = open_store(db_url)
    runner = _runner(3)
    with tenuto.Client(db_url) as c:
        for i in range(5):
            c.start(collector, 1, instance_id=f"lru-{i}")
        take_step(store, runner)
        assert len(runner.cache) == 3
        for i in range(5):  # evicted ones are replayed from history and still complete
            c.raise_event(f"lru-{i}", "item", i)
        take_step(store, runner)
        assert [c.status(f"lru-{i}").output for i in range(5)] == [[0], [1], [2], [3], [4]]
    store.close()
