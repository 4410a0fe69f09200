"""PostgreSQL: many worker processes, a server restart, and pause across processes."""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

import pytest

import tenuto
from conftest import own_postgres
from test_crash import WorkerProcess, _lines

from helpers import wait_for

app = tenuto.App()


@app.activity
def step(x: int) -> int:
    time.sleep(0.02)
    return x + 1


@app.orchestrator
def chain(ctx, n):
    out = []
    for i in range(n):
        out.append((yield ctx.call_activity(step, i)))
    return out


@pytest.fixture
def pg_url(tmp_path):
    from conftest import drop_postgres_schema, new_db_url

    url = new_db_url("postgres", tmp_path)
    yield url
    drop_postgres_schema(url)


@pytest.fixture
def spawn(tmp_path):
    log = tmp_path / "work.log"
    log.touch()
    procs: list[WorkerProcess] = []

    def start(url: str, seconds: float = 0.02) -> WorkerProcess:
        w = WorkerProcess(url, {"CRASH_LOG": str(log), "ACTIVITY_SECONDS": str(seconds)})
        procs.append(w)
        return w

    start.log = log  # type: ignore[attr-defined]
    yield start
    for w in procs:
        w.stop()


def _open(lines: list[list[str]], worker: WorkerProcess) -> set[tuple[str, str]]:
    """Activities the worker started and has not finished, according to the log."""
    pid = str(worker.proc.pid)
    started = {(ln[1], ln[2]) for ln in lines if ln[0] == "start" and ln[3] == pid}
    ended = {(ln[1], ln[2]) for ln in lines if ln[0] == "end" and ln[3] == pid}
    return started - ended


@pytest.mark.slow
def test_scale_out_with_workers_killed_mid_run(pg_url, spawn):
    """4 worker processes share 500 orchestrations of 5 activities; two are killed with
    SIGKILL mid-run and a new one joins; everything completes exactly once."""
    log: Path = spawn.log
    workers = [spawn(pg_url, seconds=0.2) for _ in range(4)]
    with tenuto.Client(pg_url) as c:
        ids = [c.start("chain", 5, instance_id=f"s-{i:03d}") for i in range(500)]
        wait_for(lambda: sum(1 for ln in _lines(log) if ln[0] == "end") > 800, timeout=120)

        # Kill two workers while they run activities, then see what they left unfinished.
        def two_busy() -> list[WorkerProcess] | None:
            lines = _lines(log)
            busy = [w for w in workers if _open(lines, w)]
            return busy[:2] if len(busy) >= 2 else None

        victims = wait_for(two_busy, timeout=60)
        for v in victims:
            v.kill()
        lines = _lines(log)
        in_flight = set().union(*(_open(lines, v) for v in victims))
        spawn(pg_url)
        for iid in ids:
            st = c.wait(iid, timeout=180)
            assert st.runtime_status is tenuto.Status.COMPLETED, st
            assert st.output == [1, 2, 3, 4, 5]
            done = Counter(e.data["task_id"] for e in c.history(iid) if e.type == "TaskCompleted")
            assert sorted(done) == [0, 1, 2, 3, 4] and set(done.values()) == {1}
    finished = {(ln[1], ln[2]) for ln in _lines(log) if ln[0] == "end"}
    killed = {str(v.proc.pid) for v in victims}
    assert in_flight, "the kill should have interrupted some activities"
    reran = {(ln[1], ln[2]) for ln in _lines(log) if ln[0] == "end" and ln[3] not in killed}
    assert in_flight <= reran, "every interrupted activity ran again on a live worker"
    assert len(finished) == 2500


@pytest.mark.slow
def test_pause_across_processes_holds_every_activity(pg_url, spawn):
    """This process pauses 100 running instances whose activities run in two worker
    processes; none of their activities starts after pause() returns."""
    log: Path = spawn.log
    spawn(pg_url, seconds=0.2)
    spawn(pg_url, seconds=0.2)
    with tenuto.Client(pg_url) as c:
        ids = [c.start("chain", 8, instance_id=f"p-{i:03d}") for i in range(100)]
        wait_for(lambda: len({ln[1] for ln in _lines(log) if ln[0] == "start"}) >= 30, timeout=60)
        returned = {}
        for iid in ids:
            try:
                c.pause(iid, "across processes")
            except tenuto.InstanceFinished:
                # On a loaded machine the last of 100 pauses can come after an instance's
                # 1.6 s of work: it finished unpaused, there is nothing to hold.
                continue
            returned[iid] = time.time()
        ids = list(returned)
        assert len(ids) >= 50, f"only {len(ids)} instances were still running to pause"
        assert len(c.query(status="PAUSED", limit=1000).items) == len(ids)
        held_at = {
            iid: len([ln for ln in _lines(log) if ln[0] == "start" and ln[1] == iid]) for iid in ids
        }
        # Let the workers run whatever was running; nothing new may start.
        wait_for(
            lambda: all(
                len([ln for ln in _lines(log) if ln[0] == "end" and ln[1] == iid]) == held_at[iid]
                for iid in ids
            ),
            timeout=30,
        )
        late = [
            (ln[1], ln[2])
            for ln in _lines(log)
            if ln[0] == "start" and ln[1] in returned and float(ln[4]) >= returned[ln[1]]
        ]
        assert late == []
        assert c.resume_many(id_prefix="p-") == len(ids)
        for iid in ids:
            assert c.wait(iid, timeout=60).output == [1, 2, 3, 4, 5, 6, 7, 8]


@pytest.fixture
def own_server():
    with own_postgres() as server:
        yield server


@pytest.mark.slow
def test_workers_survive_a_postgres_restart(own_server, caplog):
    caplog.set_level(logging.WARNING, logger="tenuto")
    url = f"{own_server.url}?schema=restart"
    with tenuto.Worker(app, url, lease_seconds=5), tenuto.Client(url) as c:
        ids = [c.start(chain, 5) for _ in range(100)]
        wait_for(lambda: len(c.query(status="COMPLETED", limit=1000).items) >= 10, timeout=60)
        own_server.stop("fast")  # every connection drops
        time.sleep(1.0)  # the database stays down for a while, as in a real restart
        own_server.start()
        for iid in ids:
            st = c.wait(iid, timeout=120)
            assert st.output == [1, 2, 3, 4, 5]
            done = Counter(e.data["task_id"] for e in c.history(iid) if e.type == "TaskCompleted")
            assert set(done.values()) == {1}
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        "connection to PostgreSQL was lost" in m or "no connection to PostgreSQL" in m
        for m in messages
    ), messages
    assert any("reachable again" in m for m in messages)
