"""The clock jumps, forward and backward, under durable timers, pauses and scheduled
resumes (through a clock the test controls, given to the worker and the client).

A forward jump fires the timers it passes, each once; a backward jump fires nothing
early and re-fires nothing; a scheduled resume still happens after a backward jump."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import tenuto
from tenuto import Status

from helpers import settle, wait_for

app = tenuto.App()


@app.orchestrator
def ticker(ctx: tenuto.OrchestrationContext, n: int) -> Any:
    fired = []
    for i in range(n):
        yield ctx.create_timer(timedelta(seconds=60))
        fired.append(i)
        ctx.set_custom_status(i + 1)
    return fired


runs: list[int] = []


@app.activity
def slow(x: int) -> int:
    runs.append(x)
    time.sleep(1.5)  # three leases long: the worker must renew its lease meanwhile
    return x


@app.orchestrator
def one_slow(ctx: tenuto.OrchestrationContext, x: int) -> Any:
    return (yield ctx.call_activity(slow, x))


class JumpClock:
    """The machine's clock plus an offset the test changes."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return round(time.time() + self._offset, 6)

    def jump(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


def _count(client: tenuto.Client, iid: str, kind: str) -> int:
    return sum(1 for e in client.history(iid) if e.type == kind)


def _timers_once(client: tenuto.Client, iid: str) -> None:
    """Every timer created fired at most once, and only timers created fired."""
    history = client.history(iid)
    created = Counter(e.data["task_id"] for e in history if e.type == "TimerCreated")
    fired = Counter(e.data["task_id"] for e in history if e.type == "TimerFired")
    assert set(created.values()) <= {1}, created
    assert set(fired.values()) <= {1} and set(fired) <= set(created), (created, fired)


def test_clock_jumps_neither_lose_nor_repeat_timers(db_url: str) -> None:
    clock = JumpClock()
    with (
        tenuto.Client(db_url, clock=clock, actor="chaos") as c,
        tenuto.Worker(app, db_url, clock=clock, poll_interval=0.05, shutdown_grace=5) as w,
    ):
        ids = [c.start(ticker, 2, instance_id=f"clk-{i}") for i in range(5)]
        held = ids[0]
        wait_for(lambda: all(_count(c, i, "TimerCreated") == 1 for i in ids), what="timers")
        settle(w)
        assert all(_count(c, i, "TimerFired") == 0 for i in ids)

        clock.jump(-3600)  # backward: nothing comes due early
        settle(w)
        assert all(_count(c, i, "TimerFired") == 0 for i in ids)

        c.pause(held, "clock test")
        clock.jump(3600 + 61)  # forward past every first timer: each fires, once
        running = ids[1:]
        wait_for(
            lambda: all(_count(c, i, "TimerCreated") == 2 for i in running), what="second timers"
        )
        settle(w)
        assert all(_count(c, i, "TimerFired") == 1 for i in running)
        assert _count(c, held, "TimerFired") == 0, "a timer fired while paused"

        clock.jump(-7200)  # far backward: nothing fires again, nothing fires early
        settle(w)
        assert all(_count(c, i, "TimerFired") == 1 for i in running)

        clock.jump(7200 + 61)  # forward again: the second timers fire, once
        for iid in running:
            assert c.wait(iid, timeout=30).output == [0, 1]
        c.resume(held, "clock test")  # its overdue timer fires right after resume
        wait_for(lambda: _count(c, held, "TimerCreated") == 2, what="the held timer")
        clock.jump(61)
        assert c.wait(held, timeout=30).output == [0, 1]
        for iid in ids:
            _timers_once(c, iid)


def test_scheduled_resume_survives_a_backward_jump(db_url: str) -> None:
    clock = JumpClock()
    with (
        tenuto.Client(db_url, clock=clock, actor="chaos") as c,
        tenuto.Worker(app, db_url, clock=clock, poll_interval=0.05, shutdown_grace=5) as w,
    ):
        iid = c.start(ticker, 1, instance_id="sched")
        wait_for(lambda: _count(c, iid, "TimerCreated") == 1, what="the timer")
        settle(w)
        # The machine's clock is set back an hour (an NTP step, a VM restored) ...
        clock.jump(-3600)
        settle(w)
        # ... then an operator pauses until 30 s from now (by the new clock).
        now = tenuto.status.from_timestamp(clock.now())
        assert now is not None
        c.pause(iid, "maintenance", resume_at=now + timedelta(seconds=30))
        settle(w)
        assert c.status(iid).runtime_status is Status.PAUSED
        clock.jump(31)
        wait_for(lambda: c.status(iid).runtime_status is not Status.PAUSED, what="the resume")
        # Its timer was set before the clock went back: it is due when the clock gets there.
        settle(w)
        assert _count(c, iid, "TimerFired") == 0
        clock.jump(3600 + 30)  # net +61 s since the timer was set
        st = c.wait(iid, timeout=10)
        assert st.runtime_status is Status.COMPLETED and st.output == [0]
        resumed = [e for e in c.history(iid) if e.type == "ExecutionResumed"]
        assert [e.data["by"] for e in resumed] == ["schedule"]
        _timers_once(c, iid)


def test_leases_are_renewed_after_a_backward_jump(db_url: str) -> None:
    """A long activity claimed after the clock went back keeps its lease: no other worker
    takes it over and runs it again."""
    clock = JumpClock()
    runs.clear()
    options: dict[str, Any] = {"clock": clock, "lease_seconds": 0.5, "shutdown_grace": 5}
    with (
        tenuto.Client(db_url, clock=clock) as c,
        tenuto.Worker(app, db_url, **options) as a,
        tenuto.Worker(app, db_url, **options) as b,
    ):
        settle(a)
        settle(b)
        clock.jump(-3600)
        iid = c.start(one_slow, 7)
        assert c.wait(iid, timeout=30).output == 7
    assert runs == [7], f"the activity ran {len(runs)} times: its lease was not renewed"
