"""The embedded SQLite store: one file, WAL mode, safe for several processes.

Durability: by default the database runs with ``synchronous=NORMAL`` in WAL mode. Every
committed change survives a crash of the process (kill -9 included); a power loss or
operating-system crash may lose the last transactions committed before it, but never
corrupts the file. ``sqlite:///path.db?synchronous=full`` makes every commit durable
against power loss too, at the cost of an fsync per transaction.

Write transactions take SQLite's write lock up front (``BEGIN IMMEDIATE``), so two
workers never interleave; readers never block in WAL mode.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl

from .._wakeups import TOPICS, hub_for
from ..errors import ValidationError
from . import migrations
from ._sql import Dialect, SqlCursor, SqlReader, SqlTx
from .base import Listener, Reader, Store, Tx, split_url

_SYNC_MODES = {"off": "OFF", "normal": "NORMAL", "full": "FULL", "extra": "EXTRA"}
#: Noted on the error of a write that waited the whole busy timeout for the lock: running
#: it again would only wait that long again, so it is not transient.
_WAITED = "tenuto: waited the whole busy_timeout for the write lock"


class _SqliteDialect(Dialect):
    def sql(self, text: str) -> str:
        return text

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        if not values:
            return "1 = 0", []
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)


_DIALECT = _SqliteDialect()


class _SqliteTx(SqlTx):
    """The shared SQL, in a transaction that holds SQLite's write lock."""

    def lock_names(self, kind: str, names: Sequence[str], exclusive: bool) -> None:
        pass  # the write lock already serializes every write transaction


class _Cursor(SqlCursor):
    dialect = _DIALECT

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)


def missing(url: str) -> str | None:
    """The path of the file ``url`` names if there is no such file (``None`` if there is);
    a URL with a bad option is refused first, as opening it would."""
    path, options = parse_url(url)
    _settings(options)
    return None if os.path.exists(path) else os.path.abspath(path)


def _settings(options: dict[str, str]) -> tuple[str, float]:
    """The ``synchronous`` mode and the ``busy_timeout`` of the URL's options."""
    sync = options.get("synchronous", "normal").lower()
    if sync not in _SYNC_MODES:
        raise ValidationError(f"synchronous must be one of {sorted(_SYNC_MODES)}, not {sync!r}")
    return _SYNC_MODES[sync], _busy_timeout(options.get("busy_timeout", "60"))


def parse_url(url: str) -> tuple[str, dict[str, str]]:
    """``sqlite:///relative.db`` or ``sqlite:////absolute.db`` to a path and options."""
    parts = split_url(url)
    if parts.scheme != "sqlite":
        raise ValidationError(f"not an SQLite URL: {url!r}")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc:
        raise ValidationError(
            f"SQLite URLs have no host: write sqlite:///relative.db or sqlite:////abs.db, "
            f"not {url!r}"
        )
    if not path or path == ":memory:":
        raise ValidationError(
            "tenuto needs an SQLite file shared by its worker and clients; give a path, "
            "for example sqlite:///tenuto.db"
        )
    options = dict(parse_qsl(parts.query))
    unknown = set(options) - {"synchronous", "busy_timeout"}
    if unknown:
        raise ValidationError(
            f"unknown SQLite URL option(s) {sorted(unknown)}; known: synchronous, busy_timeout"
        )
    return path, options


def _busy_timeout(text: str) -> float:
    """The ``busy_timeout`` URL option: seconds to wait for the write lock."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 <= seconds < float("inf"):
        raise ValidationError(
            "the SQLite URL option busy_timeout must be a number of seconds (0 or more), "
            f"such as ?busy_timeout=5 or ?busy_timeout=0.5, not {text[:40]!r}"
        )
    return seconds


class SqliteStore(Store):
    """tenuto's state in one SQLite file."""

    driver_errors = (sqlite3.Error,)

    def __init__(self, url: str) -> None:
        path, options = parse_url(url)
        self.url = url
        self.path = os.path.abspath(path)
        self.synchronous, self.busy_timeout = _settings(options)
        directory = os.path.dirname(self.path)
        if directory and not os.path.isdir(directory):
            raise ValidationError(f"the directory of the SQLite file does not exist: {directory}")
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._hub = hub_for(f"sqlite:{self.path}")
        self._migrate()

    # -- connections ---------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        # Switching to WAL needs the database to itself for a moment: wait for it.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-16000")
        # Then a short busy timeout: writers wait in _begin, which polls more often.
        conn.execute("PRAGMA busy_timeout=2")
        with self._lock:
            self._all.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("this store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _migrate(self) -> None:
        conn = self._conn()
        with self._write(conn):
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for m in migrations.load("sqlite"):
                if m.version in done:
                    continue
                for statement in _statements(m.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (m.version, m.name, time.time()),
                )

    @contextmanager
    def _write(self, conn: sqlite3.Connection) -> Iterator[None]:
        self._begin(conn)
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _begin(self, conn: sqlite3.Connection) -> None:
        """Take the write lock, waiting up to ``busy_timeout``.

        SQLite's own busy handler backs off to sleeps of 100 ms, so a client behind a
        busy worker could wait that long for a gap it missed; polling every few
        milliseconds instead keeps a pause or a start quick under load.
        """
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.0002
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() + delay > deadline:
                    exc.add_note(_WAITED)
                    raise
            time.sleep(delay)
            delay = min(delay * 1.5, 0.003)

    # -- Store ---------------------------------------------------------------------

    @contextmanager
    def transaction(self, origin: Listener | None = None, durable: bool = True) -> Iterator[Tx]:
        conn = self._conn()
        tx = _SqliteTx(_Cursor(conn))
        # In WAL mode NORMAL never waits for the disk; with FULL, a commit that may be
        # lost (``durable=False``) skips the fsync: the next FULL commit syncs the log,
        # this one's frames included.
        relaxed = not durable and self.synchronous in ("FULL", "EXTRA")
        if relaxed:
            conn.execute("PRAGMA synchronous=NORMAL")
        try:
            with self._write(conn):
                yield tx
                tx.flush()
        finally:
            if relaxed:
                conn.execute(f"PRAGMA synchronous={self.synchronous}")
        tx.committed()
        if tx.wakes:
            self._hub.pulse(tx.wakes, exclude=origin.event if origin else None)

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        conn = self._conn()
        # One read transaction: every read sees the same snapshot.
        conn.execute("BEGIN")
        try:
            yield SqlReader(_Cursor(conn))
        finally:
            conn.execute("COMMIT")

    def listener(self, topics: Iterable[str] = TOPICS) -> Listener:
        return _SqliteListener(self, topics)

    def is_transient(self, exc: BaseException) -> bool:
        return (
            isinstance(exc, sqlite3.OperationalError)
            and "locked" in str(exc)
            and _WAITED not in getattr(exc, "__notes__", ())
        )

    def outage(self, exc: BaseException) -> str | None:
        if isinstance(exc, sqlite3.OperationalError) and (
            "locked" in str(exc) or "busy" in str(exc)
        ):
            return f"the SQLite database {self.path} is locked by another process ({exc})"
        if isinstance(exc, sqlite3.OperationalError) and "disk" in str(exc):
            return f"the SQLite database {self.path} cannot be written ({exc})"
        return None

    def close(self) -> None:
        self._closed = True
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()


class _SqliteListener(Listener):
    """Wakes on commits in this process at once, and on other processes' commits
    within ``poll`` seconds (``PRAGMA data_version`` changes on any foreign commit)."""

    interval = 0.01

    def __init__(self, store: SqliteStore, topics: Iterable[str]) -> None:
        self._store = store
        self.event = store._hub.listen(topics)
        self._conn = store._connect()
        self._version = self._data_version()

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if self.event.wait(min(self.interval, max(remaining, 0))):
                self.event.clear()
                self._version = self._data_version()
                return True
            version = self._data_version()
            if version != self._version:
                self._version = version
                return True
            if remaining <= 0:
                return False

    def kick(self) -> None:
        self.event.set()

    def close(self) -> None:
        self._store._hub.unlisten(self.event)
        self._conn.close()


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into complete statements."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not buffer.strip():
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete statement in migration: {buffer.strip()[:80]!r}")
