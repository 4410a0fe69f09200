"""Helpers shared by the tests."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import tenuto
from tenuto._runner import StepRunner
from tenuto.store.base import Store

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.005, what: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


_leases = itertools.count()


def take_step(store: Store, runner: StepRunner) -> int:
    """One worker step, as a worker takes it: claim, run, commit; returns how many
    instances committed a step. For tests that decide which worker takes which step."""
    lease = f"test:{next(_leases)}"
    with store.transaction() as tx:
        claimed = runner.claim(tx, time.time(), 10, lease, time.time() + 30)
    ran = [runner.run(c) for c in claimed]
    with store.transaction() as tx:
        committed = runner.commit(tx, ran, time.time())
        committed.finish()
        return committed.count


class Gate:
    """Lets a test hold activities until it opens them, and see who is waiting."""

    def __init__(self) -> None:
        import threading

        self._cond = threading.Condition()
        self._open: set[object] = set()
        self.waiting: list[object] = []

    def wait(self, key: object, timeout: float = 30.0) -> None:
        with self._cond:
            self.waiting.append(key)
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: key in self._open, timeout):
                raise TimeoutError(f"gate {key!r} was never opened")
            self.waiting.remove(key)

    def reset(self) -> None:
        """Close every gate again (between tests that reuse keys)."""
        with self._cond:
            self._open.clear()

    def wait_briefly(self, key: object) -> bool:
        """Whether ``key`` opens within a moment (for waiting from async code)."""
        with self._cond:
            return self._cond.wait_for(lambda: key in self._open, 0.05)

    def open(self, key: object) -> None:
        with self._cond:
            self._open.add(key)
            self._cond.notify_all()

    def is_waiting(self, key: object) -> bool:
        with self._cond:
            return key in self.waiting


def settle(worker: object, cycles: int = 5) -> None:
    """Let ``worker`` look for work ``cycles`` more times (each after a wake-up), so a
    test can assert that something did *not* happen although it had every chance."""
    for _ in range(cycles):
        before = worker.polls  # type: ignore[attr-defined]
        worker._listener.kick()  # type: ignore[attr-defined]
        wait_for(lambda b=before: worker.polls > b, what="a worker cycle")  # type: ignore[attr-defined]


class RunningServer:
    """``tenuto.http.create_app`` served by uvicorn on a free loopback port."""

    def __init__(
        self,
        url: str,
        server: Any,
        thread: Any,
        client: tenuto.Client,
        worker: tenuto.Worker | None,
    ) -> None:
        self.url, self.server, self.thread = url, server, thread
        self.client, self.worker = client, worker

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        if self.worker is not None:
            self.worker.stop()
        self.client.close()


def serve_http(
    client: tenuto.Client, worker: tenuto.Worker | None = None, **options: Any
) -> RunningServer:
    """Serve ``tenuto.http.create_app(client, **options)`` with uvicorn on a free loopback
    port, in a thread; returns once it accepts connections."""
    import socket

    import uvicorn

    from tenuto.http import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(client, **options),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), timeout=10, what="HTTP server")
    if not server.started:
        raise RuntimeError("the HTTP server did not start")
    return RunningServer(f"http://127.0.0.1:{port}", server, thread, client, worker)


def sql_rows(db_url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run a read-only ``query`` (``?`` placeholders, unqualified table names) directly
    against the database behind ``db_url``, bypassing tenuto: for checks "from the
    tables"."""
    if db_url.startswith("sqlite"):
        import sqlite3

        from tenuto.store.sqlite import parse_url as sqlite_url

        path, _ = sqlite_url(db_url)
        conn = sqlite3.connect(path, timeout=60)
        try:
            return [tuple(r) for r in conn.execute(query, params).fetchall()]
        finally:
            conn.close()
    import psycopg

    from tenuto.store.postgres import parse_url as pg_url

    conninfo, schema = pg_url(db_url)
    with psycopg.connect(conninfo, options=f"-c search_path={schema}") as pg:
        return [tuple(r) for r in pg.execute(query.replace("?", "%s"), params).fetchall()]


#: Queued activities that a claim could start although their instance is PAUSED.
STARTABLE_WHILE_PAUSED = (
    "SELECT a.instance_id, a.name FROM activities a JOIN instances i"
    " ON i.instance_id = a.instance_id"
    " WHERE i.status = 'PAUSED' AND a.held = 0 AND a.lease IS NULL"
)

#: Queued activities that a claim could start although a standing pause of their type stands.
STARTABLE_WHILE_TYPE_PAUSED = (
    "SELECT a.instance_id, a.name FROM activities a JOIN standing_pauses sp"
    " ON sp.kind = 'activity' AND sp.name = a.name"
    " WHERE a.held = 0 AND a.lease IS NULL"
)
