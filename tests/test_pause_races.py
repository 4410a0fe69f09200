"""Pause rule 1 under concurrency: after ``pause()`` returns, nothing of the instance
starts until it is resumed, whatever else runs at the same moment (retries, releases of
standing pauses, bulk operations, cascades from a parent).

The worker runs in a subprocess (``tests/apps/races.py``) and logs the start time of
every activity attempt (``activity_info().started_at``, taken before the lease that
covers the attempt commits); the test records when each pause returned and when the
resume that ended it was sent. An attempt that started inside such a window broke the
rule.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import tenuto
from tenuto import Status
from test_crash import WorkerProcess

from helpers import STARTABLE_WHILE_PAUSED, STARTABLE_WHILE_TYPE_PAUSED, sql_rows, wait_for

Window = tuple[float, float]
#: Rounds of each race test: a few in CI, many with TENUTO_RACE_ROUNDS=100.
ROUNDS = int(os.environ.get("TENUTO_RACE_ROUNDS", "10"))


def _starts(log: Path) -> list[tuple[str, str, float]]:
    """``(instance_id, activity, started_at)`` of every attempt logged so far."""
    out = []
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "start":
            out.append((parts[1], parts[2], float(parts[3])))
    return out


def _inside(starts: list[tuple[str, str, float]], windows: dict[str, list[Window]]) -> list[str]:
    """The attempts that started inside a pause window of their instance."""
    return [
        f"{iid} {name} started {at - lo:.4f} s after pause() returned"
        for iid, name, at in starts
        for lo, hi in windows.get(iid, [])
        if lo < at < hi
    ]


def _at_once(*calls: Callable[[], object]) -> list[float]:
    """Run ``calls`` in threads released at the same moment; returns when each returned."""
    barrier = threading.Barrier(len(calls))
    returned = [0.0] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        calls[i]()
        returned[i] = time.time()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(returned), "a racing call did not return"
    return returned


def _queue_held(client: tenuto.Client, db_url: str, prefix: str, fans: int = 50) -> None:
    """Start ``fans`` instances of ``fanning`` (ids ``prefix0``...), 4 activities each,
    and wait until all 200 are queued and held by a standing pause of ``step``."""
    client.pause_activity("step", reason="hold them while they are scheduled", force=True)
    client.start_many("fanning", [4] * fans, instance_ids=[f"{prefix}{i}" for i in range(fans)])
    query = "SELECT COUNT(*) FROM activities WHERE instance_id LIKE ? AND held = 1"
    wait_for(
        lambda: sql_rows(db_url, query, (prefix + "%",))[0][0] == 4 * fans,
        timeout=60,
        what="every activity queued and held",
    )


def _started_after(log: Path, prefix: str, at: float) -> list[str]:
    return [
        f"{iid} started {t - at:.4f} s after the pause returned"
        for iid, _, t in _starts(log)
        if iid.startswith(prefix) and t > at
    ]


@pytest.fixture
def race_worker(db_url: str, tmp_path: Path):
    log = tmp_path / "race.log"
    log.touch()
    workers: list[WorkerProcess] = []

    def spawn(*args: str) -> WorkerProcess:
        w = WorkerProcess(db_url, {"RACE_LOG": str(log)}, *args, app="races:app")
        workers.append(w)
        return w

    yield log, spawn
    for w in workers:
        w.stop()


def test_a_retry_never_starts_while_its_instance_is_paused(db_url, race_worker):
    """A retry decided while a pause commits must be held (on PostgreSQL the retry's
    statement used to decide from a snapshot taken before the pause committed)."""
    log, spawn = race_worker
    spawn()
    with tenuto.Client(db_url, actor="race") as client:
        iid = client.start("retrying", 1)
        wait_for(lambda: len(_starts(log)) >= 3, timeout=30, what="retries under way")
        windows: list[Window] = []
        for _ in range(10 * ROUNDS):
            seen = len(_starts(log))
            client.pause(iid, reason="race")
            paused = time.time()
            time.sleep(0.05)  # the length of the pause window, not a wait for anything
            windows.append((paused, time.time()))
            client.resume(iid)
            # The next window opens while retries run again.
            wait_for(lambda s=seen: len(_starts(log)) > s, timeout=30, what="a new attempt")
        assert _inside(_starts(log), {iid: windows}) == []


def test_releasing_an_activity_type_racing_pause_many_holds_the_paused(db_url, race_worker):
    """``resume_activity`` and ``pause_many`` at the same moment: whichever commits
    first, no activity starts after ``pause_many`` returned while its instance is
    PAUSED."""
    log, spawn = race_worker
    spawn()
    with (
        tenuto.Client(db_url, actor="a") as pauser,
        tenuto.Client(db_url, actor="b") as releaser,
    ):
        for round_ in range(ROUNDS):
            prefix = f"round{round_}-"
            _queue_held(pauser, db_url, prefix)
            paused, _ = _at_once(
                lambda p=prefix: pauser.pause_many(id_prefix=p, reason="incident"),
                lambda: releaser.resume_activity("step"),
            )
            # An instance whose activities all ran before pause_many took it has completed.
            statuses = {pauser.status(f"{prefix}{i}").runtime_status for i in range(50)}
            assert statuses <= {Status.PAUSED, Status.COMPLETED}
            # The tables first: nothing of a PAUSED instance may be left claimable. Then
            # the log: an attempt leased by now had entered its function (and logged)
            # before its lease committed.
            assert sql_rows(db_url, STARTABLE_WHILE_PAUSED) == []
            assert _started_after(log, prefix, paused) == []
            pauser.terminate_many(id_prefix=prefix)


def test_resuming_instances_racing_an_activity_pause_holds_that_activity(db_url, race_worker):
    """``resume_many`` and ``pause_activity`` at the same moment: the resumed instances'
    activities of the paused type stay held, and none starts after the standing pause
    returned."""
    log, spawn = race_worker
    spawn()
    with (
        tenuto.Client(db_url, actor="a") as resumer,
        tenuto.Client(db_url, actor="b") as typist,
    ):
        for round_ in range(ROUNDS):
            prefix = f"round{round_}-"
            # 200 activities queued, held by their instances' pause alone.
            _queue_held(resumer, db_url, prefix)
            resumer.pause_many(id_prefix=prefix, reason="maintenance")
            typist.resume_activity("step")
            _, paused = _at_once(
                lambda p=prefix: resumer.resume_many(id_prefix=p),
                lambda: typist.pause_activity("step", reason="downstream", force=True),
            )
            assert sql_rows(db_url, STARTABLE_WHILE_TYPE_PAUSED) == []
            assert _started_after(log, prefix, paused) == []
            typist.resume_activity("step")
            resumer.terminate_many(id_prefix=prefix)


# -- steps cut short by pauses -----------------------------------------------------------

app = tenuto.App()
in_step = threading.Event()
go_on = threading.Event()


@app.activity
def noop(x: int) -> int:
    return x


@app.orchestrator
def slow_step(ctx, rounds):
    if not ctx.is_replaying and rounds > 0:
        in_step.set()
        go_on.wait(30)  # the step runs while the test pauses the instance
    return (yield ctx.call_activity(noop, 1))


def test_steps_cut_short_by_pauses_do_not_count_as_crashes(client, start_worker):
    """A step discarded because its instance was paused meanwhile is not a step that
    crashed its worker: however often it happens, the instance is not abandoned."""
    in_step.clear()
    go_on.clear()
    start_worker(app)
    iid = client.start(slow_step, 1)
    for _ in range(15):  # more than the claims after which a step counts as abandoned
        assert in_step.wait(10)
        in_step.clear()
        client.pause(iid)
        go_on.set()  # the step ends, and is discarded: the instance was paused
        go_on.clear()  # (the step waiting on it is woken all the same)
        client.resume(iid)
    assert in_step.wait(10)
    go_on.set()  # this time the step commits
    assert client.wait(iid, timeout=10).output == 1


def test_a_parents_pause_racing_the_end_of_its_childs_standing_pause(db_url, race_worker):
    """``pause(parent)`` and ``resume_orchestrator(child's orchestrator)`` at the same
    moment: whichever commits first, a child whose parent ends up PAUSED ends up PAUSED
    too (the cascade decides on the child's row once it holds its lock)."""
    _, spawn = race_worker
    spawn()
    with (
        tenuto.Client(db_url, actor="a") as parents,
        tenuto.Client(db_url, actor="b") as types,
    ):
        for round_ in range(2 * ROUNDS):
            p = f"parent-{round_}"
            parents.start("parent", -1, instance_id=p)
            child = wait_for(lambda p=p: parents.query(id_prefix=f"{p}:").items, timeout=30)[0]
            types.pause_orchestrator("stepping", reason="freeze")
            _at_once(lambda p=p: parents.pause(p), lambda: types.resume_orchestrator("stepping"))
            assert parents.status(p).runtime_status is Status.PAUSED
            assert parents.status(child.instance_id).runtime_status is Status.PAUSED
            parents.terminate(p)
