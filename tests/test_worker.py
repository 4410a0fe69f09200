"""The worker: leases kept alive, bounded concurrency, graceful stop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import tenuto
from tenuto import Status

from helpers import Gate, wait_for

app = tenuto.App()
gate = Gate()
_lock = threading.Lock()
running = {"now": 0, "max": 0}
calls: dict[str, int] = {}


def _enter() -> None:
    with _lock:
        running["now"] += 1
        running["max"] = max(running["max"], running["now"])


def _leave() -> None:
    with _lock:
        running["now"] -= 1


@pytest.fixture(autouse=True)
def _fresh_state():
    gate.reset()
    calls.clear()
    running.update(now=0, max=0)


@app.activity
def held(key: str) -> str:
    with _lock:
        calls[key] = calls.get(key, 0) + 1
    _enter()
    try:
        gate.wait(key, timeout=60)
    finally:
        _leave()
    return key


@app.activity
async def async_held(key: str) -> str:
    _enter()
    try:
        while not await asyncio.to_thread(gate.wait_briefly, key):
            pass
    finally:
        _leave()
    return key


@app.orchestrator
def fan(ctx, keys):
    return (yield ctx.when_all([ctx.call_activity(held, k) for k in keys]))


@app.orchestrator
def async_fan(ctx, keys):
    return (yield ctx.when_all([ctx.call_activity(async_held, k) for k in keys]))


def _reset() -> None:
    running.update(now=0, max=0)


def test_concurrency_bounds_running_activities(client, start_worker):
    _reset()
    worker = start_worker(app, concurrency=2)
    keys = [f"c{i}" for i in range(6)]
    iid = client.start(fan, keys)
    for k in keys:
        wait_for(lambda k=k: gate.is_waiting(k))  # activities start in scheduling order
        assert worker.running_activities <= 2
        assert running["max"] <= 2
        gate.open(k)
    assert client.wait(iid, timeout=10).output == keys
    assert running["max"] == 2


def test_async_activities_share_the_event_loop(client, start_worker):
    _reset()
    start_worker(app, concurrency=8)
    keys = [f"a{i}" for i in range(8)]
    iid = client.start(async_fan, keys)
    wait_for(lambda: running["now"] == 8)  # all eight run at once on one loop
    for k in keys:
        gate.open(k)
    assert client.wait(iid, timeout=10).output == keys


def test_a_long_activity_keeps_its_lease(client, start_worker):
    """Leases are renewed while an activity runs, so a second worker does not take over
    an activity that simply runs longer than the lease."""
    start_worker(app, lease_seconds=0.3)
    start_worker(app, lease_seconds=0.3)
    iid = client.start(fan, ["long"])
    wait_for(lambda: gate.is_waiting("long"))
    started = time.monotonic()
    wait_for(lambda: time.monotonic() - started > 1.2)  # four lease periods
    assert calls["long"] == 1
    gate.open("long")
    assert client.wait(iid, timeout=10).output == ["long"]
    assert calls["long"] == 1


def test_stop_lets_running_activities_finish_and_records_them(client, db_url):
    worker = tenuto.Worker(app, db_url, shutdown_grace=10).start()
    iid = client.start(fan, ["graceful"])
    wait_for(lambda: gate.is_waiting("graceful"))
    stopper = threading.Thread(target=worker.stop)
    stopper.start()
    gate.open("graceful")
    stopper.join(timeout=20)
    assert not stopper.is_alive()
    history = [e.type for e in client.history(iid)]
    assert "TaskScheduled" in history
    assert client.status(iid).runtime_status is Status.RUNNING
    # The result was recorded before the worker stopped: a new worker completes the
    # instance without running the activity again.
    with tenuto.Worker(app, db_url):
        assert client.wait(iid, timeout=10).output == ["graceful"]
    assert calls["graceful"] == 1
