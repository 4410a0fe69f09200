"""Pause rule 1 against everything at once, on PostgreSQL (where transactions really run
concurrently): for ``TENUTO_CHAOS_SECONDS`` (20 s in CI; a minute or more by hand), two
worker processes run retries that never end, endless chains of activities and parents
with children, while five actors pause and resume instances one by one, by filter, by
cascade, by standing orchestrator pause and by standing activity pause, concurrently.

Checked all along and at the end:

- from the tables, sampled continuously: no queued activity of a PAUSED instance, and none
  of a paused activity type, is ever claimable (``held = 0``, unleased) in a committed
  state;
- from the activities' own start times: none began between the moment a pause of its
  instance (or of its parent) returned and the moment the resume that ended it was sent;
- no operation failed (a conflict the store retries is fine; an error that reaches the
  caller is not).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import tenuto
from test_crash import WorkerProcess
from test_pause_races import Window, _inside, _starts

from helpers import STARTABLE_WHILE_PAUSED, STARTABLE_WHILE_TYPE_PAUSED, sql_rows

SECONDS = float(os.environ.get("TENUTO_CHAOS_SECONDS", "20"))


class Race:
    """Actors looping until stopped, each with its own client; errors are collected."""

    def __init__(self, db_url: str, seed: int) -> None:
        self.db_url = db_url
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.windows: dict[str, list[Window]] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def actor(self, name: str, step: Callable[[tenuto.Client, random.Random], None]) -> None:
        rng = random.Random(self.rng.random())

        def loop() -> None:
            with tenuto.Client(self.db_url, actor=name) as client:
                while not self.stop.is_set():
                    try:
                        step(client, rng)
                    except Exception as exc:
                        with self._lock:
                            self.errors.append(f"{name}: {type(exc).__name__}: {exc}")

        self._threads.append(threading.Thread(target=loop, name=name))

    def window(self, iid: str, paused: float, resumed: float) -> None:
        with self._lock:
            self.windows.setdefault(iid, []).append((paused, resumed))

    def run(self, seconds: float) -> None:
        for t in self._threads:
            t.start()
        self.stop.wait(seconds)
        self.stop.set()
        for t in self._threads:
            t.join(timeout=60)


def _held_for(rng: random.Random) -> None:
    time.sleep(rng.uniform(0.005, 0.06))  # how long a pause lasts: part of the workload


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres"])
def test_nothing_starts_while_paused_whatever_runs_concurrently(db_url: str, tmp_path: Path):
    log = tmp_path / "race.log"
    log.touch()
    workers = [WorkerProcess(db_url, {"RACE_LOG": str(log)}, app="races:app") for _ in range(2)]
    seed = random.randrange(1 << 30)
    race = Race(db_url, seed)
    try:
        with tenuto.Client(db_url, actor="setup") as setup:
            setup.start_many("retrying", [1] * 4, instance_ids=[f"retry-{i}" for i in range(4)])
            setup.start_many("stepping", [-1] * 8, instance_ids=[f"loop-{i}" for i in range(8)])
            setup.start_many("parent", [-1] * 4, instance_ids=[f"parent-{i}" for i in range(4)])

        def one_by_one(client: tenuto.Client, rng: random.Random) -> None:
            iid = f"retry-{rng.randrange(4)}"
            client.pause(iid, reason="one")
            paused = time.time()
            _held_for(rng)
            race.window(iid, paused, time.time())
            client.resume(iid)

        def by_filter(client: tenuto.Client, rng: random.Random) -> None:
            client.pause_many(id_prefix="loop-", reason="many")
            _held_for(rng)
            client.resume_many(id_prefix="loop-")

        def parents(client: tenuto.Client, rng: random.Random) -> None:
            iid = f"parent-{rng.randrange(4)}"
            client.pause(iid, reason="cascade")
            paused = time.time()
            _held_for(rng)
            race.window(f"{iid}:", paused, time.time())  # its children, by id prefix
            client.resume(iid)

        def orchestrator_type(client: tenuto.Client, rng: random.Random) -> None:
            client.pause_orchestrator("stepping", reason="type")
            _held_for(rng)
            client.resume_orchestrator("stepping")

        def activity_type(client: tenuto.Client, rng: random.Random) -> None:
            name = rng.choice(["step", "always_fails"])
            # force: the worker processes may not have registered the name yet.
            client.pause_activity(name, reason="downstream", force=True)
            _held_for(rng)
            client.resume_activity(name)

        claimable: list[str] = []

        def sampler(client: tenuto.Client, rng: random.Random) -> None:
            for query in (STARTABLE_WHILE_PAUSED, STARTABLE_WHILE_TYPE_PAUSED):
                found = sql_rows(db_url, query)
                if found:
                    claimable.append(f"{time.time():.3f} {found[:3]}")
            time.sleep(0.01)

        for name, step in [
            ("one_by_one", one_by_one),
            ("by_filter", by_filter),
            ("parents", parents),
            ("orchestrator_type", orchestrator_type),
            ("activity_type", activity_type),
            ("sampler", sampler),
        ]:
            race.actor(name, step)
        race.run(SECONDS)
    finally:
        for w in workers:
            w.stop()

    starts = _starts(log)
    assert len(starts) > 100, f"too little ran to tell anything ({len(starts)} starts)"
    windows = dict(race.windows)
    for prefix, spans in race.windows.items():
        if prefix.endswith(":"):  # a parent's windows hold for each of its children
            for iid in {i for i, _, _ in starts if i.startswith(prefix)}:
                windows[iid] = windows.get(iid, []) + spans
    with tenuto.Client(db_url) as client:
        failures = {
            st.instance_id: st.failure for st in client.query(status=[tenuto.Status.FAILED]).items
        }
    assert failures == {}, f"seed {seed}"
    assert race.errors == [], f"seed {seed}"
    assert claimable == [], f"seed {seed}"
    assert _inside(starts, windows) == [], f"seed {seed}"
