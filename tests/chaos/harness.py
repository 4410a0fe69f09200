"""The chaos harness: worker fleets that die and come back, rounds of random commands,
and the invariants checked after each round (see the package docstring)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import tenuto
from tenuto import Status

from .app import event_data, expected_output

T = TypeVar("T")
TESTS = Path(__file__).resolve().parent.parent

#: How many rounds each chaos test runs: a few in CI, many with TENUTO_CHAOS_ROUNDS=200.
ROUNDS = int(os.environ.get("TENUTO_CHAOS_ROUNDS", "0"))


def rounds(default: int) -> int:
    return ROUNDS or default


# -- worker processes ----------------------------------------------------------------------


KILL_POINTS = ("activity", "step", "commit")
#: For each kill point, the range the process's N is drawn from (it dies the N-th time).
KILL_AFTER = {"activity": (4, 30), "step": (3, 20), "commit": (2, 12)}


class Fleet:
    """``size`` worker processes (``tenuto worker chaos.app:app``) on ``db_url``.

    With ``kills``, each process is started with a kill plan (``CHAOS_KILL``) that makes
    it SIGKILL itself at a random moment, cycling through the kill points; a supervisor
    thread starts a new process for every one that died, until :meth:`stop`.
    """

    def __init__(
        self,
        db_url: str,
        log: Path,
        *,
        size: int = 2,
        kills: bool = False,
        seed: int = 0,
        lease_seconds: float = 1.0,
        activity_seconds: float = 0.01,
    ) -> None:
        self.db_url, self.log, self.size, self.kills = db_url, log, size, kills
        self.lease_seconds = lease_seconds
        self.activity_seconds = activity_seconds
        self.rng = random.Random(seed)
        self.spawned = 0
        self.deaths: list[tuple[int, int]] = []  # (pid, returncode) of processes that died
        self.procs: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._paused = threading.Event()  # supervisor leaves dead slots empty while set
        self._thread = threading.Thread(target=self._supervise, daemon=True)

    def start(self) -> Fleet:
        with self._lock:
            self.procs = [self._spawn() for _ in range(self.size)]
        self._thread.start()
        return self

    def _plan(self) -> str:
        if not self.kills:
            return ""
        point = KILL_POINTS[self.spawned % len(KILL_POINTS)]
        low, high = KILL_AFTER[point]
        return f"{point}@{self.rng.randint(low, high)}"

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "CHAOS_LOG": str(self.log),
            "CHAOS_KILL": self._plan(),
            "CHAOS_ACTIVITY_SECONDS": str(self.activity_seconds),
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        }
        self.spawned += 1
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tenuto",
                "worker",
                "chaos.app:app",
                "--db",
                self.db_url,
                "--lease-seconds",
                str(self.lease_seconds),
                "--log-level",
                "error",
            ],
            env=env,
        )

    def _supervise(self) -> None:
        while not self._stopping.wait(0.02):
            with self._lock:
                for i, proc in enumerate(self.procs):
                    code = proc.poll()
                    if code is not None and not self._stopping.is_set():
                        self.deaths.append((proc.pid, code))
                        self.procs[i] = self._spawn()

    def kill_all(self) -> None:
        """SIGKILL every worker (the supervisor starts new ones)."""
        with self._lock:
            for proc in self.procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGKILL)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_log(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines() if line.strip()]


def kills_by_point(log: Path) -> Counter[str]:
    return Counter(ln[1] for ln in read_log(log) if ln[0] == "kill")


# -- the store, read directly ------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """An instance's history as stored: ``(seq, type, data)`` rows, and its history_len."""

    rows: tuple[tuple[int, str, str], ...]
    history_len: int


def read_stored(db_url: str, instance_id: str) -> Stored:
    """The stored history rows (with their sequence numbers) of one instance."""
    if db_url.startswith("sqlite"):
        import sqlite3

        from tenuto.store.sqlite import parse_url as sqlite_url

        path, _ = sqlite_url(db_url)
        conn = sqlite3.connect(path, timeout=60)
        try:
            conn.execute("BEGIN")
            rows = conn.execute(
                "SELECT seq, type, data FROM history WHERE instance_id = ? ORDER BY seq",
                (instance_id,),
            ).fetchall()
            found = conn.execute(
                "SELECT history_len FROM instances WHERE instance_id = ?", (instance_id,)
            ).fetchone()
            conn.execute("COMMIT")
        finally:
            conn.close()
    else:
        import psycopg
        from psycopg import sql

        from tenuto.store.postgres import parse_url as pg_url

        conninfo, schema = pg_url(db_url)
        with psycopg.connect(conninfo) as pg:
            pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            ident = sql.Identifier(schema)
            rows = pg.execute(
                sql.SQL(
                    "SELECT seq, type, data::text FROM {}.history WHERE instance_id = %s "
                    "ORDER BY seq"
                ).format(ident),
                (instance_id,),
            ).fetchall()
            found = pg.execute(
                sql.SQL("SELECT history_len FROM {}.instances WHERE instance_id = %s").format(
                    ident
                ),
                (instance_id,),
            ).fetchone()
    if found is None:
        raise LookupError(instance_id)
    return Stored(tuple((int(s), str(t), str(d)) for s, t, d in rows), int(found[0]))


# -- riding out outages ----------------------------------------------------------------


def retrying(client: tenuto.Client, fn: Callable[[], T], timeout: float = 90.0) -> T:
    """Call ``fn`` again while the database is unreachable or locked (an outage the
    store recognizes); any other error is raised at once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except tenuto.TenutoError:
            raise
        except Exception as exc:
            store = client.store
            if store.outage(exc) is None and not store.is_transient(exc):
                raise
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


# -- a round -------------------------------------------------------------------------------


@dataclass
class Model:
    """What the test did to one instance, and so what must have become of it."""

    instance_id: str
    spec: dict[str, Any]
    paused: bool = False
    terminated: bool = False
    finished: bool = False
    event_sent: bool = False
    #: Intervals (pause() returned, resume() called) during which it was surely paused.
    paused_windows: list[tuple[float, float]] = field(default_factory=list)
    paused_since: float | None = None
    commands: list[str] = field(default_factory=list)
    snapshots: list[Stored] = field(default_factory=list)

    def close_window(self, at: float) -> None:
        if self.paused_since is not None:
            self.paused_windows.append((self.paused_since, at))
            self.paused_since = None


def random_spec(rng: random.Random) -> dict[str, Any]:
    return {"chain": rng.randint(1, 4), "fan": rng.randint(0, 3), "event": rng.random() < 0.5}


class Round:
    """One round: start instances, command them at random, settle, then check."""

    def __init__(
        self,
        client: tenuto.Client,
        db_url: str,
        log: Path,
        rng: random.Random,
        prefix: str,
        *,
        instances: int = 10,
        commands: int = 30,
        gap: float = 0.03,
    ) -> None:
        self.client, self.db_url, self.log, self.rng = client, db_url, log, rng
        self.prefix = prefix
        self.n_instances, self.n_commands, self.gap = instances, commands, gap
        self.models: dict[str, Model] = {}

    def call(self, fn: Callable[[], T]) -> T:
        return retrying(self.client, fn)

    def start(self) -> None:
        for i in range(self.n_instances):
            iid = f"{self.prefix}-{i:03d}"
            spec = random_spec(self.rng)
            # InstanceExists: a start whose answer was lost to an outage; it did happen.
            with contextlib.suppress(tenuto.InstanceExists):
                self.call(lambda: self.client.start("flow", spec, instance_id=iid))  # noqa: B023
            self.models[iid] = Model(iid, spec)

    def command(self, during: Callable[[int], None] | None = None) -> None:
        """Send ``n_commands`` random commands; ``during(i)`` runs before the i-th."""
        for i in range(self.n_commands):
            if during is not None:
                during(i)
            live = [m for m in self.models.values() if not m.finished and not m.terminated]
            if not live:
                break
            m = self.rng.choice(live)
            roll = self.rng.random()
            if roll < 0.05:
                self.terminate(m)
            elif roll < 0.2 and m.spec["event"] and not m.event_sent:
                self.raise_event(m)
            elif roll < 0.6:
                self.pause(m)
            else:
                self.resume(m)
            if self.rng.random() < 0.3:
                self.snapshot(self.rng.choice(list(self.models.values())))
            time.sleep(self.rng.uniform(0, self.gap))  # pacing between commands

    def _finished(self, m: Model, exc: tenuto.InstanceFinished) -> None:
        m.finished = True
        m.close_window(time.time())
        if exc.status is Status.TERMINATED:
            m.terminated = True  # an earlier attempt that lost its answer did it

    def pause(self, m: Model) -> None:
        m.commands.append("pause")
        try:
            self.call(lambda: self.client.pause(m.instance_id, "chaos"))
        except tenuto.InstanceFinished as exc:
            self._finished(m, exc)
            return
        if m.paused_since is None:
            m.paused_since = time.time()
        m.paused = True

    def resume(self, m: Model) -> None:
        m.commands.append("resume")
        m.close_window(time.time())
        try:
            self.call(lambda: self.client.resume(m.instance_id, "chaos"))
        except tenuto.InstanceFinished as exc:
            self._finished(m, exc)
            return
        m.paused = False

    def raise_event(self, m: Model) -> None:
        m.commands.append("event")
        try:
            self.call(
                lambda: self.client.raise_event(m.instance_id, "go", event_data(m.instance_id))
            )
        except tenuto.InstanceFinished as exc:
            self._finished(m, exc)
            return
        m.event_sent = True

    def terminate(self, m: Model) -> None:
        m.commands.append("terminate")
        try:
            self.call(lambda: self.client.terminate(m.instance_id, "chaos"))
        except tenuto.InstanceFinished as exc:
            self._finished(m, exc)
            return
        m.close_window(time.time())
        m.terminated = True

    def snapshot(self, m: Model) -> None:
        with contextlib.suppress(Exception):  # a snapshot during an outage is skipped
            m.snapshots.append(read_stored(self.db_url, m.instance_id))

    def settle(self, timeout: float = 120.0) -> None:
        """Send the events still owed, wait for everything not paused to finish, check
        the paused ones are still PAUSED, then resume them and wait for them too."""
        for m in self.models.values():
            if m.spec["event"] and not m.event_sent and not (m.finished or m.terminated):
                self.raise_event(m)
        self._wait_terminal([m for m in self.models.values() if not m.paused], timeout)
        held = [m for m in self.models.values() if m.paused and not (m.finished or m.terminated)]
        for m in held:
            st = self.call(lambda m=m: self.client.status(m.instance_id))  # type: ignore[misc]
            assert st.runtime_status is Status.PAUSED, (
                f"{m.instance_id}: last command was pause, but it is {st.runtime_status.value}"
                f" (commands {m.commands})"
            )
        for m in held:
            self.resume(m)
        self._wait_terminal(held, timeout)

    def _wait_terminal(self, models: list[Model], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for m in models:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    st = self.call(lambda m=m: self.client.status(m.instance_id))  # type: ignore[misc]
                    raise AssertionError(
                        f"{m.instance_id} did not finish within {timeout} s: {st} "
                        f"(commands {m.commands})"
                    )
                try:
                    self.client.wait(m.instance_id, timeout=min(left, 5.0))
                    break
                except tenuto.WaitTimeout:
                    continue
                except tenuto.TenutoError:
                    raise
                except Exception as exc:
                    if self.client.store.outage(exc) is None:
                        raise
                    time.sleep(0.05)

    def check(self) -> list[str]:
        """Every invariant, for every instance of the round; returns the breaches."""
        lines = read_log(self.log)
        problems: list[str] = []
        for m in self.models.values():
            problems += check_instance(self.client, self.db_url, m, lines)
        return problems


# -- the invariants ------------------------------------------------------------------------

#: History events that may be written while an instance is paused.
ALLOWED_WHILE_PAUSED = frozenset({"ExecutionTerminated"})


def check_instance(
    client: tenuto.Client, db_url: str, m: Model, lines: list[list[str]]
) -> list[str]:
    iid = m.instance_id
    problems: list[str] = []

    def bad(text: str) -> None:
        problems.append(f"{iid}: {text} (commands {m.commands})")

    st = retrying(client, lambda: client.status(iid))
    stored = retrying(client, lambda: read_stored(db_url, iid))
    # 1. The state its commands imply.
    if m.terminated:
        if st.runtime_status is not Status.TERMINATED:
            bad(f"was terminated but is {st.runtime_status.value}")
    elif st.runtime_status is not Status.COMPLETED:
        bad(f"should have completed, but is {st.runtime_status.value}: {st.failure}")
    elif st.output != expected_output(iid, m.spec):
        bad(f"output {st.output!r} != expected {expected_output(iid, m.spec)!r}")
    # 2. Append-only and gap-free.
    seqs = [seq for seq, _, _ in stored.rows]
    if seqs != list(range(len(seqs))) or stored.history_len != len(seqs):
        bad(f"history sequence numbers {seqs} with history_len {stored.history_len}")
    for snap in m.snapshots:
        if stored.rows[: len(snap.rows)] != snap.rows:
            bad(f"a snapshot of {len(snap.rows)} events is not a prefix of the final history")
    # 3. Each activity result delivered exactly once.
    events = [(t, json.loads(d)) for _, t, d in stored.rows]
    scheduled = Counter(d["task_id"] for t, d in events if t == "TaskScheduled")
    completed = Counter(d["task_id"] for t, d in events if t == "TaskCompleted")
    if any(n > 1 for n in scheduled.values()):
        bad(f"a task was scheduled twice: {scheduled}")
    if any(n > 1 for n in completed.values()):
        bad(f"an activity result was delivered twice: {completed}")
    if set(completed) - set(scheduled):
        bad(f"results for tasks never scheduled: {set(completed) - set(scheduled)}")
    if st.runtime_status is Status.COMPLETED and set(completed) != set(scheduled):
        bad(f"completed with tasks missing results: {set(scheduled) - set(completed)}")
    if any(t == "TaskFailed" for t, _ in events):
        bad("an activity failed")
    # 4. Nothing happens in history while paused...
    paused = False
    for t, d in events:
        if t == "ExecutionSuspended" and d.get("rescheduled"):
            continue  # a paused instance's scheduled resume was moved: a pause record
        if t == "ExecutionSuspended":
            if paused:
                bad("suspended twice without a resume")
            paused = True
        elif t == "ExecutionResumed":
            paused = False
        elif paused and t not in ALLOWED_WHILE_PAUSED:
            bad(f"{t} written while paused")
    # ... and no activity starts between pause() returning and resume() being called.
    windows = list(m.paused_windows)
    if m.paused_since is not None:
        windows.append((m.paused_since, float("inf")))
    starts = [(int(ln[2]), float(ln[4])) for ln in lines if ln[0] == "start" and ln[1] == iid]
    for task_id, at in starts:
        for since, until in windows:
            if since < at < until:
                bad(f"activity task {task_id} started at {at:.6f}, paused {since:.6f}-{until:.6f}")
    if st.runtime_status is Status.COMPLETED:
        ran = {task_id for task_id, _ in starts}
        if set(scheduled) - ran:
            bad(f"tasks completed without an activity start logged: {set(scheduled) - ran}")
    return problems


def assert_no_problems(problems: list[str]) -> None:
    assert not problems, f"{len(problems)} invariant breach(es):\n" + "\n".join(problems[:30])


@contextlib.contextmanager
def client_for(db_url: str) -> Iterator[tenuto.Client]:
    with tenuto.Client(db_url, actor="chaos") as client:
        yield client
