"""Pending work and workers, through real worker processes on both backends: what a
pause holds, when it is drained, who is working."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

import tenuto
from tenuto import Status
from test_cli import Cli, table_row
from test_crash import WorkerProcess

from helpers import wait_for


@pytest.fixture
def drain_worker(db_url: str, tmp_path: Path):
    workers: list[WorkerProcess] = []

    def spawn() -> WorkerProcess:
        w = WorkerProcess(db_url, {}, app="drain:app")
        workers.append(w)
        return w

    yield spawn
    for w in workers:
        w.stop()


def _running(client: tenuto.Client, iid: str) -> tenuto.PendingWork:
    return wait_for(
        lambda: (w := client.pending_work(iid)).running and w,
        timeout=30,
        what="the activity to run",
    )


def test_pause_during_a_slow_activity_shows_it_running_then_its_result_waiting(
    client: tenuto.Client, drain_worker, tmp_path: Path
) -> None:
    worker = drain_worker()
    release = tmp_path / "release"
    iid = client.start("inspect", str(release), instance_id="drain-1")
    work = _running(client, iid)
    client.pause(iid, reason="maintenance")

    work = client.pending_work(iid)
    assert work.status is Status.PAUSED and work.drained is False
    [running] = work.running
    assert (running.name, running.task_id, running.attempt) == ("slow", 0, 1)
    assert running.started_at is not None
    assert running.worker in {w.id for w in client.workers()}
    assert next(w for w in client.workers() if w.id == running.worker).pid == worker.proc.pid
    assert work.waiting_results == () and work.held == ()
    with pytest.raises(tenuto.WaitTimeout, match="still runs slow"):
        client.wait_drained(iid, timeout=0.2)

    waiter: list[tenuto.PendingWork] = []
    thread = threading.Thread(target=lambda: waiter.append(client.wait_drained(iid, 60)))
    thread.start()
    release.touch()
    thread.join(70)
    [drained] = waiter
    assert drained.drained is True and drained.running == ()
    [result] = drained.waiting_results
    assert (result.name, result.task_id, result.ok) == ("slow", 0, True)
    # Nothing more happens while paused: the result stays waiting.
    assert client.status(iid).runtime_status is Status.PAUSED

    client.resume(iid, reason="done")
    work = wait_for(
        lambda: (w := client.pending_work(iid)).events and w, timeout=30, what="the event wait"
    )
    assert work.waiting_results == () and work.running == () and work.drained
    [event] = work.events
    assert event.name == "decision" and event.timeout_at is not None
    [timer] = work.timers
    assert timer.fire_at == event.timeout_at
    client.raise_event(iid, "decision", "go")
    assert client.wait(iid, timeout=30).output == ["done", "go"]
    finished = client.pending_work(iid)
    assert finished.events == () and finished.timers == () and finished.drained


def test_a_parent_is_not_drained_while_its_child_runs(
    client: tenuto.Client, db_url: str, drain_worker, tmp_path: Path
) -> None:
    drain_worker()
    release = tmp_path / "release"
    iid = client.start("parent", str(release), instance_id="drain-parent")
    child = wait_for(lambda: client.pending_work(iid).children, timeout=30)[0]
    _running(client, child.instance_id)
    client.pause(iid)
    work = client.pending_work(iid)
    assert work.running == () and work.drained is False
    [child] = work.children
    assert child.name == "inspect" and child.status is Status.PAUSED and not child.drained
    shown = Cli(db_url).ok("status", child.instance_id)
    assert re.search(r"Paused by\s+tester \(via parent drain-parent\)", shown), shown
    release.touch()
    work = client.wait_drained(iid, timeout=60)
    assert work.children[0].drained
    [result] = client.pending_work(child.instance_id).waiting_results
    assert result.name == "slow"


def test_held_activities_are_listed_with_what_holds_them(
    client: tenuto.Client, drain_worker, tmp_path: Path
) -> None:
    client.pause_activity("slow", reason="upgrade", force=True)
    drain_worker()
    iid = client.start("inspect", str(tmp_path / "release"), instance_id="held")
    work = wait_for(lambda: (w := client.pending_work(iid)).held and w, timeout=30)
    [held] = work.held
    assert (held.name, held.held_by) == ("slow", "standing pause")
    assert work.drained and work.running == ()


def test_workers_lists_a_live_worker_process_and_drops_a_killed_one(
    client: tenuto.Client, drain_worker
) -> None:
    first, second = drain_worker(), drain_worker()
    pids = {first.proc.pid, second.proc.pid}
    listed = wait_for(
        lambda: (ws := client.workers()) and {w.pid for w in ws} == pids and ws,
        timeout=30,
        what="both workers to be listed",
    )
    for w in listed:
        assert w.kind == "tenuto" and w.host and w.running == 0
        assert w.orchestrators == ("inspect", "parent") and w.activities == ("slow",)
        assert w.last_seen >= w.started_at
    first.kill()
    wait_for(
        lambda: {w.pid for w in client.workers()} == {second.proc.pid},
        timeout=30,
        what="the killed worker to drop off",
    )
    second.stop()
    # A worker that stops removes itself at once.
    assert client.workers() == []


def test_pending_work_of_an_unknown_instance(client: tenuto.Client) -> None:
    with pytest.raises(tenuto.InstanceNotFound):
        client.pending_work("nope")
    with pytest.raises(tenuto.InstanceNotFound):
        client.wait_drained("nope", timeout=1)


def test_rest_pending_work_and_workers(http_server, drain_worker, tmp_path: Path) -> None:
    server = http_server()
    worker = drain_worker()
    release = tmp_path / "release"
    with httpx.Client(base_url=server.url, timeout=60) as api:
        r = api.post("/api/instances", json={"name": "inspect", "input": str(release)})
        iid = r.json()["instance_id"]
        wait_for(lambda: api.get(f"/api/instances/{iid}/work").json()["running"], timeout=30)
        api.post(f"/api/instances/{iid}/pause", json={"reason": "maintenance"})
        work = api.get(f"/api/instances/{iid}/work").json()
        assert work["status"] == "PAUSED" and work["drained"] is False
        assert work["warnings"] == []
        [running] = work["running"]
        assert running["name"] == "slow" and running["worker"]
        assert api.get(f"/api/instances/{iid}/work?wait_drained=0.1").json()["drained"] is False
        release.touch()
        work = api.get(f"/api/instances/{iid}/work?wait_drained=30").json()
        assert work["drained"] is True and work["running"] == []
        assert [r["name"] for r in work["waiting_results"]] == ["slow"]
        [listed] = api.get("/api/workers").json()["items"]
        assert listed["pid"] == worker.proc.pid and listed["id"] == running["worker"]
        assert listed["activities"] == ["slow"]
        missing = api.get("/api/instances/nope/work")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_cli_status_sections_pause_wait_drained_and_workers(
    client: tenuto.Client, db_url: str, drain_worker, tmp_path: Path
) -> None:
    cli = Cli(db_url)
    worker = drain_worker()
    release = tmp_path / "release"
    iid = client.start("inspect", str(release), instance_id="cli-drain")
    _running(client, iid)
    shown = cli.ok("status", iid)
    assert re.search(r"Running\s+slow \(task 0, attempt 1, started .*\) on \S+", shown), shown
    assert re.search(r"Drained\s+no: work of it is still running", shown)

    waiting = subprocess.Popen(
        [sys.executable, "-m", "tenuto", "pause", iid, "--wait-drained", "60", "--db", db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: client.status(iid).runtime_status is Status.PAUSED, timeout=30)
    assert waiting.poll() is None  # still waiting: slow runs
    release.touch()
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert out.splitlines() == [
        f"Paused {iid} (now PAUSED).",
        "Waiting for the work that had started to finish...",
        f"{iid} is paused and quiet; 1 result waiting for the resume: go ahead.",
    ]
    shown = cli.ok("status", iid)
    assert re.search(
        r"Result waiting\s+slow \(task 0\) completed at .* \(after the resume\)", shown
    )
    assert re.search(r"Drained\s+yes: paused and quiet", shown)

    listed = cli.ok("workers")
    assert str(worker.proc.pid) in table_row(listed, "inspect, parent", "slow")
    [as_json] = cli.json("workers")
    assert as_json["pid"] == worker.proc.pid and as_json["kind"] == "tenuto"
    error = cli.fails("pause", "--all", "--wait-drained", "5", code=2)
    assert "--wait-drained waits for one instance" in error


# -- Durable Task SDK workers --------------------------------------------------------------

_sdk_gate = threading.Event()


def sdk_slow(ctx: Any, value: Any) -> Any:
    _sdk_gate.wait(60)
    return value


def sdk_calls_slow(ctx: Any, value: Any) -> Any:
    return (yield ctx.call_activity(sdk_slow, input=value))


def test_sdk_workers_are_listed_and_named_by_their_running_activities(
    backend: str, tmp_path: Path
) -> None:
    pytest.importorskip("durabletask")
    from sdk_helpers import connected, open_sidecar

    _sdk_gate.clear()
    with open_sidecar(backend, tmp_path, 2.0) as side:
        client = side.tenuto
        with connected(side, [sdk_calls_slow], [sdk_slow]):
            [listed] = wait_for(lambda: [w for w in client.workers() if w.kind == "sdk"])
            assert listed.activities == ("sdk_slow",)
            assert listed.orchestrators == ("sdk_calls_slow",)
            assert listed.host == "127.0.0.1" and listed.pid == os.getpid()
            iid = side.client.schedule_new_orchestration(sdk_calls_slow, input=7)
            work = _running(client, iid)
            assert [a.worker for a in work.running] == [listed.id]
            _sdk_gate.set()
            assert side.client.wait_for_orchestration_completion(iid, timeout=30) is not None
        # A worker that disconnects is gone from the list at once.
        wait_for(lambda: not [w for w in client.workers() if w.kind == "sdk"])
