"""Code changed under running and paused instances, with real worker processes: a
mismatch between the code and an instance's history pauses it (history and inbox
untouched) until code that matches is back and it is resumed."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

import tenuto
from tenuto import Status
from test_cli import run_cli
from test_crash import APPS, WorkerProcess

from helpers import wait_for

ORDER_OUTPUT_V1 = {"version": 1, "steps": ["reserved book", {"ok": True}, "shipped book"]}


class Workers:
    """Worker processes running one version of the orders app at a time."""

    def __init__(self, db_url: str, tmp_path: Path) -> None:
        self.db_url = db_url
        self.log = tmp_path / "orders.log"
        self.log.touch()
        self.env = {
            "ORDERS_LOG": str(self.log),
            "FAIL_FLAG": str(tmp_path / "fail"),
            "BLOCK_REPLAY": str(tmp_path / "block"),
        }
        self.running: list[WorkerProcess] = []
        self.fail_flag = tmp_path / "fail"

    def start(self, module: str) -> WorkerProcess:
        self.stop()
        worker = WorkerProcess(self.db_url, self.env, app=f"{module}:app")
        self.running.append(worker)
        return worker

    def stop(self) -> None:
        for w in self.running:
            w.stop()
        self.running.clear()

    def ran(self, line: str) -> int:
        return self.log.read_text().splitlines().count(line)


@pytest.fixture
def workers(db_url, tmp_path):
    w = Workers(db_url, tmp_path)
    yield w
    w.stop()


def _types(history: list[tenuto.HistoryEvent]) -> list[str]:
    return [e.type for e in history]


def _waiting_for_approval(client: tenuto.Client, iid: str) -> list[tenuto.HistoryEvent]:
    """The history once the instance waits for its approval (reserve done)."""
    return wait_for(
        lambda: (hist := client.history(iid)) and "TaskCompleted" in _types(hist) and hist,
        timeout=30,
        what="the reservation",
    )


def _paused(client: tenuto.Client, iid: str) -> tenuto.InstanceStatus:
    return wait_for(
        lambda: (st := client.status(iid)).runtime_status is not Status.RUNNING and st,
        timeout=30,
        what="the instance to stop running",
    )


def test_a_code_change_pauses_the_instance_and_rolling_back_resumes_it(
    client, workers, http_server
):
    workers.start("orders_v1")
    iid = client.start("order", "book", instance_id="order-1")
    before = _waiting_for_approval(client, iid)

    workers.start("orders_v2")  # a fraud check added before the reservation, unpatched
    client.raise_event(iid, "approve", {"ok": True})
    st = _paused(client, iid)
    assert st.runtime_status is Status.PAUSED, st.failure
    assert st.pause is not None and st.pause.source == "nondeterminism"
    assert st.pause.by == "tenuto"
    reason = st.pause.reason or ""
    assert "at step 0" in reason
    assert "its history says it calls activity 'reserve'" in reason
    assert "the code now calls activity 'check_fraud'" in reason
    # The history is as it was, with the pause recorded at its end.
    after = client.history(iid)
    assert [(e.type, e.data) for e in after[: len(before)]] == [(e.type, e.data) for e in before]
    assert _types(after[len(before) :]) == ["ExecutionSuspended"]
    assert after[-1].data["source"] == "nondeterminism"
    assert workers.ran("check_fraud book") == 0
    status = " ".join(run_cli("status", iid, "--db", workers.db_url).stdout.split())
    assert "Paused by tenuto (its code no longer matches its history)" in status
    assert "tenuto replay-check" in status  # what to do
    shown = httpx.get(f"{http_server().url}/api/instances/{iid}", timeout=30).json()
    assert shown["runtime_status"] == "PAUSED"
    assert (shown["pause"]["source"], shown["pause"]["reason"]) == ("nondeterminism", reason)

    # Resumed under the same code: paused again, nothing run.
    assert client.resume(iid, "try again")
    wait_for(
        lambda: _types(client.history(iid))[-2:] == ["ExecutionResumed", "ExecutionSuspended"],
        timeout=30,
    )
    assert client.status(iid).runtime_status is Status.PAUSED

    # Which code would replay it: not v2, v1 would.
    env = {"PYTHONPATH": str(APPS)}
    v2 = run_cli("replay-check", "orders_v2:app", "--db", workers.db_url, env=env)
    assert v2.returncode == 1 and "order-1" in v2.stdout, v2.stderr
    v1 = run_cli("replay-check", "orders_v1:app", "--db", workers.db_url, env=env)
    assert v1.returncode == 0, v1.stdout + v1.stderr

    workers.start("orders_v1")  # rolled back
    assert client.resume(iid, "rolled back")
    st = client.wait(iid, timeout=30)
    assert st.runtime_status is Status.COMPLETED, st.failure
    assert st.output == ORDER_OUTPUT_V1  # the approval that came under v2 was kept
    assert workers.ran("reserve book") == 1 and workers.ran("ship book") == 1
    assert workers.ran("check_fraud book") == 0


def test_on_nondeterminism_fail_fails_the_instance(client, workers):
    workers.start("orders_v1")
    iid = client.start("order", "book", instance_id="order-strict")
    _waiting_for_approval(client, iid)
    workers.start("orders_v2_strict")
    client.raise_event(iid, "approve", {"ok": True})
    st = client.wait(iid, timeout=30)
    assert st.runtime_status is Status.FAILED
    assert st.failure is not None and st.failure.type == "tenuto.errors.NonDeterminismError"
    assert "at step 0" in st.failure.message


def test_a_worker_killed_while_it_replays_a_mismatch_loses_nothing(client, workers, tmp_path):
    workers.start("orders_v1")
    iid = client.start("order", "book", instance_id="order-crash")
    before = _waiting_for_approval(client, iid)

    block = Path(workers.env["BLOCK_REPLAY"])
    block.touch()  # replaying blocks: the worker is killed inside the step
    v2 = workers.start("orders_v2")
    client.raise_event(iid, "approve", {"ok": True})
    wait_for(Path(f"{block}.reached").exists, timeout=30, what="the replay to block")
    v2.kill()
    os.remove(block)
    assert client.status(iid).runtime_status is Status.RUNNING
    assert len(client.history(iid)) == len(before)

    workers.start("orders_v2")  # the step again, on another worker: it pauses
    st = _paused(client, iid)
    assert st.runtime_status is Status.PAUSED and st.pause is not None
    assert st.pause.source == "nondeterminism"
    assert _types(client.history(iid)) == [*_types(before), "ExecutionSuspended"]

    workers.start("orders_v1")
    client.resume(iid)
    st = client.wait(iid, timeout=30)
    assert st.runtime_status is Status.COMPLETED, st.failure
    assert st.output == ORDER_OUTPUT_V1
    assert workers.ran("reserve book") == 1 and workers.ran("ship book") == 1


def _approved(client: tenuto.Client, *ids: str) -> list[tenuto.InstanceStatus]:
    for iid in ids:
        client.raise_event(iid, "approve", {"ok": True})
    return [client.wait(iid, timeout=30) for iid in ids]


def test_a_patch_keeps_old_instances_on_the_old_path_and_new_ones_on_the_new(client, workers):
    workers.start("orders_v1")
    client.start("order", "book", instance_id="old")
    _waiting_for_approval(client, "old")

    workers.start("orders_v3")
    client.start("order", "pen", instance_id="new")
    wait_for(lambda: _types(client.history("new")).count("TaskCompleted") == 2, timeout=30)
    assert "PatchMarker" in _types(client.history("new"))
    assert "PatchMarker" not in _types(client.history("old"))
    timeline = run_cli("history", "new", "--db", workers.db_url).stdout
    assert "took the new path of patch 'fraud-check'" in timeline

    old, new = _approved(client, "old", "new")
    assert old.runtime_status is Status.COMPLETED, old.failure or old.pause
    assert old.output == {"version": 3, "checked": False, "steps": ORDER_OUTPUT_V1["steps"]}
    assert new.output == {
        "version": 3,
        "checked": True,
        "steps": ["reserved pen", {"ok": True}, "shipped pen"],
    }
    assert workers.ran("check_fraud book") == 0 and workers.ran("check_fraud pen") == 1


def test_deprecating_a_patch_pauses_only_the_instances_from_before_it(client, workers):
    workers.start("orders_v1")
    client.start("order", "book", instance_id="before")
    _waiting_for_approval(client, "before")
    workers.start("orders_v3")
    client.start("order", "pen", instance_id="patched")
    wait_for(lambda: _types(client.history("patched")).count("TaskCompleted") == 2, timeout=30)

    workers.start("orders_v4")
    client.raise_event("before", "approve", {"ok": True})
    [patched] = _approved(client, "patched")
    assert patched.output == {"version": 4, "steps": ["reserved pen", {"ok": True}, "shipped pen"]}
    before = _paused(client, "before")
    assert before.pause is not None and before.pause.source == "nondeterminism"
    assert "recorded before change 'fraud-check'" in (before.pause.reason or "")
