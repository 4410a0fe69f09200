"""The SQLite file held locked by another process (``BEGIN EXCLUSIVE`` for seconds) while
workers and clients operate: writers wait and carry on; a client with a short busy
timeout fails with an error that says the database is locked, having written nothing."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import tenuto
from tenuto import Status

from .harness import Fleet, Round, assert_no_problems, client_for, rounds

LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", time.time(), flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
print("released", time.time(), flush=True)
"""


class Locker:
    """A process that holds the SQLite write lock for ``seconds``."""

    def __init__(self, path: str, seconds: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LOCKER, path, str(seconds)], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().split()  # blocks until the lock is held
        assert first and first[0] == "locked", first
        self.locked_at = float(first[1])

    def released_at(self) -> float:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "released", line
        self.proc.wait(timeout=30)
        return float(line[1])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'tenuto.db'}"


def _path(url: str) -> str:
    return url.removeprefix("sqlite:///").split("?")[0]


@pytest.mark.slow
def test_rounds_with_the_file_locked_by_another_process(sqlite_url: str, tmp_path: Path) -> None:
    log = tmp_path / "chaos.log"
    log.touch()
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    held: list[float] = []
    n = rounds(3)
    with client_for(sqlite_url) as client, Fleet(sqlite_url, log, size=2) as fleet:
        for r in range(n):
            rnd = Round(client, sqlite_url, log, rng, f"lk{r}", instances=12, commands=30)
            rnd.start()
            lockers: list[Locker] = []

            def during(i: int, lockers: list[Locker] = lockers) -> None:
                if i in (5, 18):
                    lockers.append(Locker(_path(sqlite_url), rng.uniform(1.0, 2.5)))

            rnd.command(during)
            if not lockers:  # every instance finished before the first lock: lock now
                lockers.append(Locker(_path(sqlite_url), rng.uniform(1.0, 2.5)))
            for lk in lockers:
                held.append(lk.released_at() - lk.locked_at)
            rnd.settle()
            assert_no_problems(rnd.check())
        deaths = list(fleet.deaths)
    print(f"\nchaos sqlite lock (seed {seed}): lock held {[round(h, 2) for h in held]} s")
    assert deaths == [], f"worker processes exited while the file was locked: {deaths}"
    assert len(held) >= n and min(held) >= 1.0, held


@pytest.mark.slow
def test_clients_wait_for_the_lock_or_fail_clearly_without_writing(
    sqlite_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "chaos.log"
    log.touch()
    spec = {"chain": 2, "fan": 1, "event": False}
    with client_for(sqlite_url) as client, Fleet(sqlite_url, log, size=1):
        client.start("flow", spec, instance_id="before")
        # A client with the default busy timeout waits for the lock, then succeeds.
        lk = Locker(_path(sqlite_url), 1.5)
        assert client.status("before").instance_id == "before"  # reads do not wait (WAL)
        client.start("flow", spec, instance_id="waited")
        returned = time.time()
        released = lk.released_at()
        assert returned >= released, "the start cannot have committed while the file was locked"
        # A client with a short busy timeout gives up with an error that says why ...
        with tenuto.Client(f"{sqlite_url}?busy_timeout=0.3") as impatient:
            lk = Locker(_path(sqlite_url), 3.0)
            t0 = time.monotonic()
            with pytest.raises(Exception, match="database is locked"):
                impatient.start("flow", spec, instance_id="refused")
            # Within its busy timeout, not once per retry (it used to wait 5 x 0.3 s).
            assert time.monotonic() - t0 < 1.0
            assert impatient.store.outage(_raised(impatient, spec)) is not None
            lk.released_at()
            # ... and wrote nothing: the id is free, and the same start now succeeds.
            with pytest.raises(tenuto.InstanceNotFound):
                impatient.status("refused")
            impatient.start("flow", spec, instance_id="refused")
        for iid in ("before", "waited", "refused"):
            st = client.wait(iid, timeout=60)
            assert st.runtime_status is Status.COMPLETED and st.output == [1, 3, 201], st


def _raised(client: tenuto.Client, spec: dict[str, object]) -> BaseException:
    """The exception a start raises while the file is still locked."""
    try:
        client.start("flow", spec, instance_id="refused")
    except Exception as exc:
        return exc
    raise AssertionError("the start succeeded while the file was locked")


def test_the_http_api_answers_503_while_the_file_stays_locked(sqlite_url: str) -> None:
    """A request that cannot get the lock within the busy timeout is a 503 that says why
    and asks for a retry (it was a 500 "internal error"); it wrote nothing."""
    import httpx

    from helpers import serve_http

    client = tenuto.Client(f"{sqlite_url}?busy_timeout=0.3", actor="http")
    server = serve_http(client)
    body = {"name": "flow", "input": {"chain": 1, "fan": 0, "event": False}, "instance_id": "x"}
    try:
        lk = Locker(_path(sqlite_url), 3.0)
        r = httpx.post(f"{server.url}/api/instances", json=body, timeout=10)
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "unavailable"
        assert "locked" in r.json()["message"] and "retry" in r.json()["message"]
        assert r.headers["retry-after"] == "1"
        lk.released_at()
        assert httpx.get(f"{server.url}/api/instances/x", timeout=10).status_code == 404
        assert httpx.post(f"{server.url}/api/instances", json=body, timeout=10).is_success
    finally:
        server.stop()
