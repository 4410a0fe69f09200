"""Workers killed with SIGKILL: another worker, or the same one restarted, finishes the
work; no activity result is delivered twice; interrupted activities run again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import tenuto
from tenuto import Status

from helpers import wait_for

APPS = Path(__file__).parent / "apps"


class WorkerProcess:
    """``tenuto worker crashy:app`` (or another app of tests/apps) in a subprocess."""

    def __init__(
        self, db_url: str, env: dict[str, str], *args: str, app: str = "crashy:app", **popen: Any
    ) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tenuto",
                "worker",
                app,
                "--db",
                db_url,
                "--lease-seconds",
                "1",
                "--log-level",
                "warning",
                *args,
            ],
            env={
                **os.environ,
                **env,
                "PYTHONPATH": os.pathsep.join([str(APPS), os.environ.get("PYTHONPATH", "")]),
            },
            **popen,
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def crash_env(tmp_path):
    log = tmp_path / "crash.log"
    log.touch()
    workers: list[WorkerProcess] = []
    env = {"CRASH_LOG": str(log), "BLOCK_STEP": str(tmp_path / "block")}

    def spawn(db_url: str, *args: str, **extra_env: str) -> WorkerProcess:
        w = WorkerProcess(db_url, {**env, **extra_env}, *args)
        workers.append(w)
        return w

    yield log, tmp_path / "block", spawn
    for w in workers:
        w.stop()


def _lines(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()]


def _in_flight(log: Path, pid: int) -> set[tuple[str, str]]:
    started = {(ln[1], ln[2]) for ln in _lines(log) if ln[0] == "start" and ln[3] == str(pid)}
    ended = {(ln[1], ln[2]) for ln in _lines(log) if ln[0] == "end" and ln[3] == str(pid)}
    return started - ended


def _starts(log: Path, iid: str) -> list[list[str]]:
    return [ln for ln in _lines(log) if ln[0] == "start" and ln[1] == iid]


def _check_exactly_once(client: tenuto.Client, iid: str) -> None:
    completions = Counter(
        e.data["task_id"] for e in client.history(iid) if e.type == "TaskCompleted"
    )
    assert completions and all(n == 1 for n in completions.values()), completions


@pytest.mark.slow
def test_kill_during_activities_another_worker_takes_over(db_url, client, crash_env):
    log, _, spawn = crash_env
    workers = [spawn(db_url), spawn(db_url)]
    ids = [client.start("chain", 4) for _ in range(8)]
    victim = wait_for(
        lambda: next((w for w in workers if _in_flight(log, w.proc.pid)), None), timeout=30
    )
    survivor = next(w for w in workers if w is not victim)
    interrupted = _in_flight(log, victim.proc.pid)
    victim.kill()
    for iid in ids:
        st = client.wait(iid, timeout=60)
        assert st.runtime_status is Status.COMPLETED, st
        assert st.output == [1, 2, 3, 4]
        _check_exactly_once(client, iid)
    reruns = {
        (ln[1], ln[2]) for ln in _lines(log) if ln[0] == "end" and ln[3] == str(survivor.proc.pid)
    }
    assert interrupted <= reruns, "interrupted activities must run again"


@pytest.mark.slow
def test_kill_during_activities_the_restarted_worker_finishes(db_url, client, crash_env):
    log, _, spawn = crash_env
    first = spawn(db_url)
    ids = [client.start("fan", 6) for _ in range(3)]
    wait_for(lambda: _in_flight(log, first.proc.pid), timeout=30)
    interrupted = _in_flight(log, first.proc.pid)
    first.kill()
    second = spawn(db_url)
    for iid in ids:
        st = client.wait(iid, timeout=60)
        assert st.output == [1, 2, 3, 4, 5, 6]
        _check_exactly_once(client, iid)
    reruns = {
        (ln[1], ln[2]) for ln in _lines(log) if ln[0] == "end" and ln[3] == str(second.proc.pid)
    }
    assert interrupted <= reruns


@pytest.mark.slow
def test_kill_in_the_middle_of_an_orchestration_step(db_url, client, crash_env):
    log, block, spawn = crash_env
    block.touch()
    first = spawn(db_url)
    iid = client.start("chain", 3)
    wait_for(lambda: any(ln[0] == "blocked" for ln in _lines(log)), timeout=30)
    before = client.history(iid)
    first.kill()  # the step's transaction dies with the process
    block.unlink()
    assert client.history(iid) == before
    spawn(db_url)
    st = client.wait(iid, timeout=60)
    assert st.output == [1, 2, 3]
    _check_exactly_once(client, iid)
    started = Counter((ln[1], ln[2]) for ln in _lines(log) if ln[0] == "start")
    # The first activity (0.2 s: too long for an eager step) finished before the crash;
    # its result was not lost, and it did not run again: the crash only undid the
    # orchestration step that consumed it.
    assert started[(iid, "0")] == 1


@pytest.mark.slow
@pytest.mark.parametrize(("options", "runs"), [((), 2), (("--eager-steps-below", "0"), 1)])
def test_kill_in_an_eager_step_runs_the_quick_activity_again(
    db_url, client, crash_env, options, runs
):
    """A quick activity's result is committed with the step it makes due: a crash in that
    step loses both, so the activity runs again, and its result still counts once. With
    ``--eager-steps-below 0`` the result is committed first, and it does not run again."""
    log, block, spawn = crash_env
    block.touch()
    first = spawn(db_url, *options, ACTIVITY_SECONDS="0")
    iid = client.start("chain", 3)
    wait_for(lambda: any(ln[0] == "blocked" for ln in _lines(log)), timeout=30)
    before = client.history(iid)
    first.kill()
    block.unlink()
    assert client.history(iid) == before  # the step that consumes the result is undone
    spawn(db_url, *options, ACTIVITY_SECONDS="0")
    st = client.wait(iid, timeout=60)
    assert st.output == [1, 2, 3]
    _check_exactly_once(client, iid)
    started = Counter((ln[1], ln[2]) for ln in _lines(log) if ln[0] == "start")
    assert started[(iid, "0")] == runs


def test_a_worker_process_warns_about_a_step_that_does_not_yield(db_url, client, crash_env):
    """``tenuto worker --step-warning`` names the instance whose step is stuck."""
    log, block, _ = crash_env
    block.touch()
    env = {"CRASH_LOG": str(log), "BLOCK_STEP": str(block)}
    worker = WorkerProcess(db_url, env, "--step-warning", "0.3", stderr=subprocess.PIPE, text=True)
    proc = worker.proc
    try:
        client.start("chain", 2, instance_id="stuck-cli")
        assert proc.stderr is not None
        line = wait_for(lambda: proc.stderr.readline(), timeout=30)  # the first log line
        while "without yielding" not in line:
            line = proc.stderr.readline()
            assert line, "the worker exited without warning"
        assert "stuck-cli" in line and "'chain'" in line, line
    finally:
        worker.kill()


@pytest.mark.slow
def test_an_activity_cut_short_while_its_instance_is_paused_waits_for_the_resume(
    db_url, client, crash_env
):
    """A worker dies under a running activity of a paused instance: once the activity's
    lease runs out it is queued again, but it may not start before the resume (the
    operator waited for "drained" to do maintenance)."""
    log, _, spawn = crash_env
    first = spawn(db_url, ACTIVITY_SECONDS="30")
    iid = client.start("chain", 1)
    wait_for(lambda: _in_flight(log, first.proc.pid), timeout=30)
    client.pause(iid, "maintenance")
    first.kill()
    second = spawn(db_url, ACTIVITY_SECONDS="0.05")
    # Its lease (1 s) runs out: the activity no longer runs (it waits, held or queued).
    wait_for(
        lambda: not client.pending_work(iid).running or len(_starts(log, iid)) > 1,
        what="the cut-short activity's lease to run out",
    )
    # Claims go oldest first: once a later instance's activity has run on the second
    # worker, a claim of the cut-short one would have come before it.
    marker = client.start("chain", 1)
    assert client.wait(marker, timeout=30).output == [1]
    assert len(_starts(log, iid)) == 1, _starts(log, iid)  # only the run the kill cut short
    assert client.status(iid).runtime_status is Status.PAUSED
    client.resume(iid, "maintenance done")
    st = client.wait(iid, timeout=30)
    assert st.output == [1]
    _check_exactly_once(client, iid)
    assert any(
        ln[0] == "end" and ln[1] == iid and ln[3] == str(second.proc.pid) for ln in _lines(log)
    )
