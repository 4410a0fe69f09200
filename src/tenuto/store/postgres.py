"""The PostgreSQL store: any number of workers on any number of hosts.

``postgresql://user@host:5432/dbname?schema=tenuto`` (``schema`` defaults to ``tenuto``;
every other query parameter goes to libpq). tenuto keeps its tables in that schema,
creating and migrating it itself; concurrent first starts are serialized by an advisory
lock.

Work is claimed with ``FOR UPDATE SKIP LOCKED`` under leases, so workers never wait for
each other's claims. A commit that makes work sends a NOTIFY; every process listens, so
idle workers wake at once (polling remains only as a fallback). Connections come from a
pool; a lost connection is replaced, and the worker retries its cycle with backoff.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors, sql
from psycopg_pool import ConnectionPool, PoolTimeout

from .._signals import hub_for
from . import migrations
from ._sql import Dialect, SqlCursor, SqlReader, SqlTx
from .base import Listener, Reader, Store, Tx

log = logging.getLogger("tenuto.store")

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class _PgDialect(Dialect):
    skip_locked = "FOR UPDATE SKIP LOCKED"
    for_update = "FOR UPDATE"

    def sql(self, text: str) -> str:
        return text.replace("?", "%s")

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        if not values:
            return "1 = 0", []
        return f"{column} = ANY(?)", [list(values)]


_DIALECT = _PgDialect()


class _Cursor(SqlCursor):
    dialect = _DIALECT

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(sql, rows)


def parse_url(url: str) -> tuple[str, str]:
    """Split a tenuto PostgreSQL URL into a libpq conninfo URL and the schema name."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    schema = "tenuto"
    kept = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    if not _SCHEMA_RE.match(schema):
        raise ValueError(
            f"invalid schema name {schema!r}: use lowercase letters, digits and underscores"
        )
    scheme = "postgresql"
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(kept), "")), schema


class PostgresStore(Store):
    """tenuto's state in a PostgreSQL schema."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.conninfo, self.schema = parse_url(url)
        self.channel = f"tenuto_{self.schema}"
        self._hub = hub_for(f"postgresql:{self.conninfo}#{self.schema}")
        self._migrate()
        self.pool = ConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=pool_size,
            configure=self._configure,
            check=ConnectionPool.check_connection,
            open=True,
            timeout=15.0,
            name=f"tenuto-{self.schema}",
        )
        self._notifier: _Notifier | None = None
        self._lock = threading.Lock()

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        conn.commit()

    def _migrate(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn, conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tenuto-migrate:{self.schema}",)
            )
            schema = sql.Identifier(self.schema)
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(schema))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at double precision NOT NULL)"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for m in migrations.load("postgres"):
                if m.version not in done:
                    conn.execute(m.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) "
                        "VALUES (%s, %s, %s)",
                        (m.version, m.name, time.time()),
                    )

    # -- Store ---------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self.pool.connection() as conn:
            tx = SqlTx(_Cursor(conn))
            with conn.transaction():
                yield tx
                if tx.wakes:
                    conn.execute("SELECT pg_notify(%s, '')", (self.channel,))
        tx.committed()
        if tx.wakes:
            self._hub.pulse()

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        with self.pool.connection() as conn, conn.transaction():
            yield SqlReader(_Cursor(conn))

    def listener(self) -> Listener:
        with self._lock:
            if self._notifier is None or not self._notifier.is_alive():
                self._notifier = _Notifier(self)
                self._notifier.start()
        return _PgListener(self)

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, errors.DeadlockDetected | errors.SerializationFailure)

    def outage(self, exc: BaseException) -> str | None:
        if isinstance(exc, PoolTimeout):
            return f"no connection to PostgreSQL could be made ({_one_line(exc)})"
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and not (
            self.is_transient(exc)
        ):
            return f"the connection to PostgreSQL was lost ({_one_line(exc)})"
        return None

    def close(self) -> None:
        with self._lock:
            notifier, self._notifier = self._notifier, None
        if notifier is not None:
            notifier.stop()
        self.pool.close()

    def drop_schema(self) -> None:
        """Delete the schema and everything in it (for tests and teardown scripts)."""
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
            )


class _Notifier(threading.Thread):
    """LISTENs on the store's channel and pulses the in-process hub on each NOTIFY.

    One per store; it reconnects with backoff when its connection drops, and pulses the
    hub after reconnecting, since notifications sent meanwhile were lost.
    """

    def __init__(self, store: PostgresStore) -> None:
        super().__init__(name=f"tenuto-listen-{store.schema}", daemon=True)
        self.store = store
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def run(self) -> None:
        backoff = 0.1
        lost = False
        while not self._halt.is_set():
            try:
                with psycopg.connect(self.store.conninfo, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.store.channel)))
                    if lost:
                        log.warning("PostgreSQL notifications are back")
                    lost, backoff = False, 0.1
                    self.store._hub.pulse()
                    while not self._halt.is_set():
                        for _ in conn.notifies(timeout=0.1, stop_after=1):
                            self.store._hub.pulse()
            except psycopg.Error as exc:
                if self._halt.is_set():
                    return
                if not lost:
                    log.warning(
                        "lost the PostgreSQL notification connection (%s); workers "
                        "poll until it is back",
                        _one_line(exc),
                    )
                lost = True
                self._halt.wait(backoff)
                backoff = min(backoff * 2, 5.0)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class _PgListener(Listener):
    def __init__(self, store: PostgresStore) -> None:
        self._hub = store._hub
        self._event = self._hub.listen()

    def wait(self, timeout: float) -> bool:
        fired = self._event.wait(max(timeout, 0))
        self._event.clear()
        return fired

    def kick(self) -> None:
        self._event.set()

    def close(self) -> None:
        self._hub.unlisten(self._event)
