"""A stateful property test: random interleavings of start, pause, resume, raise_event,
terminate and activity completion against a running worker.

After every step it checks that PAUSED is shown exactly while an instance is paused and
that no activity started while its instance was paused; at the end of every run, that
each instance ended in the state its last command implies, with every event delivered
once in the order raised and every activity result delivered once.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import tenuto
from conftest import drop_postgres_schema, new_db_url
from tenuto import Status

from helpers import Gate, settle

app = tenuto.App()
gate = Gate()
activity_starts: list[tuple[str, int, float]] = []
_lock = threading.Lock()


@app.activity
def blocker(arg: list) -> int:
    iid, k = arg
    with _lock:
        activity_starts.append((iid, k, tenuto.activity_info().started_at))
    gate.wait((iid, k), timeout=120)
    return k * 2


@app.orchestrator
def scripted(ctx, _):
    """Obeys commands sent as events: run an activity, record a value, or stop."""
    log = []
    while True:
        cmd = yield ctx.wait_for_event("cmd")
        if cmd == "stop":
            return log
        if "act" in cmd:
            log.append(
                [
                    "act",
                    cmd["act"],
                    (yield ctx.call_activity(blocker, [ctx.instance_id, cmd["act"]])),
                ]
            )
        else:
            log.append(["ev", cmd["ev"]])


@dataclass
class Model:
    paused: bool = False
    terminated: bool = False
    sent: list = field(default_factory=list)  # commands, in the order raised
    # (pause returned at, resume called at) for each pause period
    pauses: list[list[float]] = field(default_factory=list)


class PauseMachine(RuleBasedStateMachine):
    backend = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="tenuto-prop-")
        self.url = url = new_db_url(self.backend, Path(self.dir))
        self.worker = tenuto.Worker(app, url, concurrency=1, shutdown_grace=10).start()
        self.client = tenuto.Client(url, actor="prop")
        self.model: dict[str, Model] = {}
        self.counter = 0

    def _live(self) -> list[str]:
        return sorted(i for i, m in self.model.items() if not m.terminated)

    @rule()
    @precondition(lambda self: len(self.model) < 4)
    def start(self) -> None:
        iid = f"i{len(self.model)}"
        self.client.start(scripted, None, instance_id=iid)
        self.model[iid] = Model()

    @rule(data=st.data())
    @precondition(lambda self: self.model)
    def pause(self, data: st.DataObject) -> None:
        iid = data.draw(st.sampled_from(sorted(self.model)))
        m = self.model[iid]
        if m.terminated:
            with pytest.raises(tenuto.InstanceFinished):
                self.client.pause(iid, "prop")
            return
        changed = self.client.pause(iid, "prop")
        assert changed is (not m.paused)
        if changed:
            m.paused = True
            m.pauses.append([time.time(), float("inf")])

    @rule(data=st.data())
    @precondition(lambda self: self.model)
    def resume(self, data: st.DataObject) -> None:
        iid = data.draw(st.sampled_from(sorted(self.model)))
        m = self.model[iid]
        if m.terminated:
            with pytest.raises(tenuto.InstanceFinished):
                self.client.resume(iid)
            return
        called = time.time()
        assert self.client.resume(iid) is m.paused
        if m.paused:
            m.paused = False
            m.pauses[-1][1] = called

    @rule(data=st.data(), kind=st.sampled_from(["ev", "act"]))
    @precondition(lambda self: self.model)
    def raise_event(self, data: st.DataObject, kind: str) -> None:
        iid = data.draw(st.sampled_from(sorted(self.model)))
        m = self.model[iid]
        self.counter += 1
        cmd = {kind: self.counter}
        if m.terminated:
            with pytest.raises(tenuto.InstanceFinished):
                self.client.raise_event(iid, "cmd", cmd)
            return
        self.client.raise_event(iid, "cmd", cmd)
        m.sent.append(cmd)

    @rule(data=st.data())
    @precondition(lambda self: self._live())
    def terminate(self, data: st.DataObject) -> None:
        iid = data.draw(st.sampled_from(self._live()))
        self.client.terminate(iid, "prop")
        m = self.model[iid]
        if m.paused:
            m.pauses[-1][1] = time.time()
        m.paused = False
        m.terminated = True

    @rule(data=st.data())
    @precondition(lambda self: any("act" in c for m in self.model.values() for c in m.sent))
    def complete_activity(self, data: st.DataObject) -> None:
        pending = sorted(
            (iid, c["act"]) for iid, m in self.model.items() for c in m.sent if "act" in c
        )
        gate.open(data.draw(st.sampled_from(pending)))
        # Give the worker its chance to start whatever it may start now, so the
        # invariants judge what it did rather than how fast it was.
        settle(self.worker, 3)

    @invariant()
    def paused_shown_exactly_while_paused(self) -> None:
        for iid, m in self.model.items():
            status = self.client.status(iid).runtime_status
            if m.terminated:
                assert status is Status.TERMINATED
            elif m.paused:
                assert status is Status.PAUSED
            else:
                assert status in (Status.PENDING, Status.RUNNING), (iid, status)

    @invariant()
    def nothing_started_while_paused(self) -> None:
        with _lock:
            starts = list(activity_starts)
        for iid, k, at in starts:
            m = self.model.get(iid)
            if m is None:
                continue
            for paused_at, resumed_at in m.pauses:
                assert not paused_at < at < resumed_at, (
                    f"activity {k} of {iid} started at {at}, while paused "
                    f"from {paused_at} to {resumed_at}"
                )

    def teardown(self) -> None:
        try:
            for iid, m in self.model.items():
                for c in m.sent:
                    if "act" in c:
                        gate.open((iid, c["act"]))
                if m.terminated:
                    continue
                if m.paused:
                    m.pauses[-1][1] = time.time()
                    m.paused = False
                    self.client.resume(iid)
                self.client.raise_event(iid, "cmd", "stop")
            for iid, m in self.model.items():
                final = self.client.wait(iid, timeout=60)
                if m.terminated:
                    assert final.runtime_status is Status.TERMINATED
                    continue
                assert final.runtime_status is Status.COMPLETED, final
                expected = [
                    ["act", c["act"], c["act"] * 2] if "act" in c else ["ev", c["ev"]]
                    for c in m.sent
                ]
                assert final.output == expected  # in order raised, each exactly once
                completed = [
                    e.data["task_id"] for e in self.client.history(iid) if e.type == "TaskCompleted"
                ]
                assert len(completed) == len(set(completed))
            self.nothing_started_while_paused()
        finally:
            self.worker.stop()
            self.client.close()
            if self.backend == "postgres":
                drop_postgres_schema(self.url)
            shutil.rmtree(self.dir, ignore_errors=True)


class PostgresPauseMachine(PauseMachine):
    backend = "postgres"


_settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PauseMachine.TestCase.settings = _settings
PostgresPauseMachine.TestCase.settings = _settings
test_pause_state_machine_sqlite = pytest.mark.slow(PauseMachine.TestCase)


@pytest.mark.slow
def test_pause_state_machine_postgres() -> None:
    new_db_url("postgres", Path("."))  # skips without a PostgreSQL server
    run_state_machine_as_test(PostgresPauseMachine, settings=settings(_settings, max_examples=30))
