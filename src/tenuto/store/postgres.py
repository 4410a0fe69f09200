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

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlunsplit

try:
    import psycopg
    from psycopg import errors, sql
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("PostgreSQL support needs psycopg 3: pip install 'tenuto[postgres]'") from exc

from .. import _json
from .._wakeups import TOPICS, hub_for
from ..errors import ValidationError
from ..history import Event, Message
from ..status import Status
from . import migrations
from ._outbox_sql import record_data
from ._sql import (
    AS_LEFT,
    INSTANCE_COLUMNS,
    INSTANCE_NAMES,
    Dialect,
    SqlCursor,
    SqlReader,
    SqlTx,
    event_text,
    instance_row,
)
from .base import (
    HistoryRow,
    InstanceRow,
    Listener,
    NewActivity,
    NewMessage,
    Reader,
    Store,
    Tx,
    Versions,
    split_url,
)
from .outbox import TrackingRecord

log = logging.getLogger("tenuto.store")

#: Tries at creating or migrating the schema (0.1 s, doubling, between them: ~6 s).
_MIGRATE_ATTEMPTS = 7
_UNCOMMITTED = "tenuto: the transaction was not committed"

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class _PgDialect(Dialect):
    # A list travels as one array parameter, whatever its length: bulk operations over
    # 100,000 instances take a few statements instead of hundreds.
    batch = 20_000
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


class _PgTx(SqlTx):
    """The shared SQL, with the hot paths of a worker cycle in single statements: one
    round trip where the generic version needs several."""

    def __init__(self, cur: SqlCursor) -> None:
        super().__init__(cur)
        #: The name locks this transaction holds: exclusive (True) or shared (False).
        self._names: dict[str, bool] = {}

    def lock_names(self, kind: str, names: Sequence[str], exclusive: bool) -> None:
        lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        for name in sorted(set(names)):  # always in the same order: no deadlocks
            key = f"tenuto:{kind}:{name}"
            if self._names.get(key) in (True, exclusive):
                continue  # held already, as strongly
            self._x(f"SELECT {lock}(hashtext(?))", (key,))
            self._names[key] = exclusive or self._names.get(key, False)

    def annotate(self, instance_ids: Sequence[str], event: Event) -> None:
        # The sequence number is read from the row as it is locked (an UPDATE re-reads
        # a row that a concurrent commit changed), so a history appended meanwhile by a
        # step that held no lock this transaction waited for cannot collide with it.
        self._x(
            "WITH u AS (UPDATE instances SET history_len = history_len + 1"
            " WHERE instance_id = ANY(?) RETURNING instance_id, history_len)"
            " INSERT INTO history (instance_id, seq, type, ts, data)"
            " SELECT instance_id, history_len - 1, ?, ?, ? FROM u",
            (sorted(set(instance_ids)), event.type, event.ts, event_text(event)),
        )

    # Lock order: name locks, then instances (in id order), then their activities. A
    # standing activity pause changes activities of many instances and records it in
    # their histories: it locks those instances before their activities, as a pause does.

    def hold_activity_type(self, name: str) -> list[str]:
        self._lock_in_order(self._instances_running(name))
        return super().hold_activity_type(name)

    def release_activity_type(self, name: str) -> list[str]:
        self._lock_in_order(self._instances_running(name))
        return super().release_activity_type(name)

    def _instances_running(self, activity: str) -> list[str]:
        """The instances with executions of ``activity`` queued or running (under the
        exclusive lock on its name, no transaction can add one)."""
        rows = self._q("SELECT DISTINCT instance_id FROM activities WHERE name = ?", (activity,))
        return [r[0] for r in rows]

    # A batch of rows goes out as one statement and one JSON parameter (json_to_recordset):
    # far cheaper to send from Python than a statement, or an array, per row.

    def append_history(self, rows: Iterable[HistoryRow], skip_taken: bool = False) -> None:
        rows = list(rows)
        if rows:
            self._x(
                "INSERT INTO history (instance_id, seq, type, ts, data) "
                "SELECT i, s, t, ts, d FROM json_to_recordset(?::json) "
                "AS x(i text, s int, t text, ts float8, d text)"
                + (" ON CONFLICT (instance_id, seq) DO NOTHING" if skip_taken else ""),
                (
                    _json_rows(
                        [
                            {
                                "i": r.instance_id,
                                "s": r.seq,
                                "t": r.event.type,
                                "ts": r.event.ts,
                                "d": event_text(r.event),
                            }
                            for r in rows
                        ]
                    ),
                ),
            )

    def add_messages(self, messages: Iterable[NewMessage]) -> None:
        messages = list(messages)
        if messages:
            self._x(
                "INSERT INTO inbox (instance_id, execution_id, type, ts, data, visible_at) "
                "SELECT i, e, t, ts, d, v FROM ROWS FROM (json_to_recordset(?::json) "
                "AS (i text, e text, t text, ts float8, d text, v float8)) WITH ORDINALITY "
                "AS x(i, e, t, ts, d, v, n) ORDER BY n",
                (_json_rows([_message_row(m) for m in messages]),),
            )

    def write_tracking(self, records: Sequence[TrackingRecord]) -> None:
        # One statement, its answer never read: in pipeline mode it rides along with the
        # transaction's other statements (no round trip of its own).
        self._x(
            "INSERT INTO outbox (ts, event, instance_id, data) "
            "SELECT ts, e, i, d FROM ROWS FROM (json_to_recordset(?::json) "
            "AS (ts float8, e text, i text, d text)) WITH ORDINALITY "
            "AS x(ts, e, i, d, n) ORDER BY n",
            (
                _json_rows(
                    [
                        {"ts": r.ts, "e": r.event, "i": r.instance_id, "d": record_data(r)}
                        for r in records
                    ]
                ),
            ),
        )

    def _lock_in_order(self, instance_ids: Iterable[str]) -> None:
        """Lock instance rows in id order, the order every transaction locks them in (and
        before their activities); the statement goes out without waiting for its answer."""
        self._x(
            "SELECT 1 FROM instances WHERE instance_id = ANY(?) ORDER BY instance_id FOR UPDATE",
            (sorted(set(instance_ids)),),
        )

    def insert_activities(self, rows: Iterable[NewActivity]) -> None:
        rows = list(rows)
        if rows:
            self._x(
                "INSERT INTO activities (instance_id, execution_id, task_id, name, input, "
                "retry, attempt, held, visible_at, created_at, trace_parent) "
                "SELECT i, e, t, n, inp, r, 1, CASE WHEN h OR EXISTS ("
                "  SELECT 1 FROM standing_pauses sp WHERE sp.kind = 'activity'"
                "  AND sp.name = x.n) THEN 1 ELSE 0 END, v, v, tp "
                "FROM ROWS FROM (json_to_recordset(?::json) AS (i text, e text, t int, "
                "n text, inp text, r text, h bool, v float8, tp text)) WITH ORDINALITY "
                "AS x(i, e, t, n, inp, r, h, v, tp, o) ORDER BY o",
                (
                    _json_rows(
                        [
                            {
                                "i": a.instance_id,
                                "e": a.execution_id,
                                "t": a.task_id,
                                "n": a.name,
                                "inp": a.input,
                                "r": a.retry,
                                "h": a.held,
                                "v": a.visible_at,
                                "tp": a.trace_parent,
                            }
                            for a in rows
                        ]
                    ),
                ),
            )

    def insert_instances(self, rows: Sequence[InstanceRow]) -> list[bool]:
        if not rows:
            return []
        payload = []
        for row in rows:
            values = {name: getattr(row, name) for name in INSTANCE_NAMES}
            values["status"] = row.status.value
            payload.append(values)
        cursor = self._x(_INSERT_INSTANCES, (_json_rows(payload),))
        inserted = {r[0] for r in cursor.fetchall()}
        # An id given twice is inserted once: the first of the two counts, as it would
        # one row at a time.
        seen: set[str] = set()
        result = []
        for row in rows:
            result.append(row.instance_id in inserted and row.instance_id not in seen)
            seen.add(row.instance_id)
        return result

    def claim_for_results(
        self,
        items: Sequence[tuple[str, str, int, int, str]],
        now: float,
        lease: str,
        lease_until: float,
    ) -> Callable[[], dict[str, bool]]:
        if not items:
            return dict
        self._lock_in_order(item[0] for item in items)
        rows = [{"i": i, "e": e, "n": n, "a": a, "l": lease_} for i, e, n, a, lease_ in items]
        cursor = self._x(
            "WITH v AS (SELECT * FROM json_to_recordset(?::json)"
            "   AS x(i text, e text, n int, a bigint, l text)),"
            " leased AS (UPDATE instances SET lease = ?, lease_until = ? FROM v"
            "   WHERE instances.instance_id = v.i AND instances.execution_id = v.e"
            f"   AND instances.history_len = v.n AND {AS_LEFT}"
            "   RETURNING instances.instance_id),"
            " taken AS (DELETE FROM activities a USING v, leased"
            "   WHERE a.id = v.a AND a.lease = v.l AND leased.instance_id = v.i"
            "   RETURNING a.instance_id)"
            " SELECT leased.instance_id, taken.instance_id IS NOT NULL"
            " FROM leased LEFT JOIN taken ON taken.instance_id = leased.instance_id",
            [_json_rows(rows), lease, lease_until, now, now, now],
        )
        # Read later, as deliver_results' answer is.
        return lambda: {r[0]: bool(r[1]) for r in cursor.fetchall()}

    def update_leased_instances(
        self, items: Sequence[tuple[str, str, int, dict[str, Any]]], verify: bool = True
    ) -> list[bool]:
        # One statement per set of columns changed (usually one for the whole batch).
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for instance_id, lease, history_len, changes in items:
            unknown = set(changes) - _COLUMN_TYPES.keys()
            if unknown:
                raise ValueError(f"not an updatable instance column: {sorted(unknown)}")
            row = {"_id": instance_id, "_lease": lease, "_len": history_len}
            row.update((c, v.value if isinstance(v, Status) else v) for c, v in changes.items())
            groups.setdefault(tuple(sorted(changes)), []).append(row)
        cursors = []
        for cols, rows in groups.items():
            types = ", ".join(f"{c} {_COLUMN_TYPES[c]}" for c in cols)
            sets = ", ".join(f"{c} = v.{c}" for c in cols)
            cursors.append(
                self._x(
                    f"UPDATE instances AS i SET {sets} FROM json_to_recordset(?::json) "
                    # Underscored keys: the row's own columns may include a "lease".
                    f'AS v("_id" text, "_lease" text, "_len" int, {types}) '
                    'WHERE i.instance_id = v."_id" AND i.lease = v."_lease" '
                    'AND i.history_len = v."_len" '
                    "AND i.status IN ('PENDING', 'RUNNING') RETURNING i.instance_id",
                    (_json_rows(rows),),
                )
            )
        if not verify:  # no read: the statements go out with the transaction's next one
            return [True] * len(items)
        updated = {r[0] for c in cursors for r in c.fetchall()}
        return [instance_id in updated for instance_id, _, _, _ in items]

    def claim_steps(
        self,
        names: Sequence[str] | None,
        now: float,
        limit: int,
        lease: str,
        lease_until: float,
        exclude: Sequence[str] = (),
        versions: Versions = None,
    ) -> list[tuple[InstanceRow, list[Message]]]:
        n = len(INSTANCE_NAMES)
        cond, params = self.d.names(names, exclude, versions)
        pending, more, more_params = self.claim_limited_pending(
            names, exclude, versions, now, limit, lease, lease_until
        )
        cond, params, limit = cond + more, [*params, *more_params], limit - len(pending)
        rows = self._q(
            "WITH c AS ("
            "  UPDATE instances SET lease = ?, lease_until = ?, claims = claims + 1"
            "  WHERE instance_id IN ("
            "    SELECT instance_id FROM instances WHERE next_due IS NOT NULL AND next_due <= ?"
            f"    AND (lease_until IS NULL OR lease_until < ?) AND {cond}"
            "    ORDER BY next_due LIMIT ? FOR UPDATE SKIP LOCKED)"
            f"  RETURNING {INSTANCE_COLUMNS}) "
            f"SELECT c.*, m.id, m.execution_id, m.type, m.ts, m.data, m.visible_at "
            "FROM c LEFT JOIN inbox m ON m.instance_id = c.instance_id "
            "ORDER BY c.next_due, c.instance_id, m.id",
            [lease, lease_until, now, now, *params, limit],
        )
        claimed: dict[str, tuple[InstanceRow, list[Message]]] = {}
        if pending:  # PENDING instances a limit let start, with their messages
            inbox = self.inbox_of([r[0] for r in pending])
            claimed = {r[0]: (instance_row(r), inbox.get(r[0], [])) for r in pending}
        for r in rows:
            iid = r[0]
            if iid not in claimed:
                claimed[iid] = (instance_row(r[:n]), [])
            mid, eid, type_, ts, data, visible_at = r[n:]
            if mid is not None:
                event = Event(type_, ts, _json.loads(data), data)
                claimed[iid][1].append(Message(mid, iid, eid, event, visible_at))
        return list(claimed.values())

    def deliver_results(
        self, items: Sequence[tuple[int, str, NewMessage]], now: float
    ) -> Callable[[], set[int]]:
        if not items:
            return set
        # Lock order: an instance before its activities, as pause, resume and terminate
        # take them (they lock the instance, then hold or drop its activities). Taking the
        # activity first would deadlock with a concurrent pause of the same instance.
        self._lock_in_order(m.instance_id for _, _, m in items)
        rows = [{"id": aid, "lease": lease, **_message_row(m)} for aid, lease, m in items]
        # One text whatever the batch size (the rows travel as one JSON parameter), so
        # psycopg parses it once and the server runs it as a prepared statement.
        cursor = self._x(
            "WITH v AS (SELECT * FROM json_to_recordset(?::json) AS x(id bigint, lease text,"
            "   i text, e text, t text, ts float8, d text, v float8)),"
            " taken AS (DELETE FROM activities a USING v WHERE a.id = v.id"
            "   AND a.lease = v.lease RETURNING a.id),"
            " queued AS (INSERT INTO inbox (instance_id, execution_id, type, ts, data, visible_at)"
            "   SELECT v.i, v.e, v.t, v.ts, v.d, v.v"
            "   FROM v JOIN taken t ON t.id = v.id ORDER BY v.id RETURNING instance_id),"
            # Lock every instance row named, RUNNING or not (see SqlTx.set_due).
            " due AS (UPDATE instances SET next_due = CASE WHEN status = ? AND"
            "   (next_due IS NULL OR next_due > ?) THEN ? ELSE next_due END"
            "   WHERE instance_id IN (SELECT instance_id FROM queued))"
            " SELECT id FROM taken",
            [_json_rows(rows), Status.RUNNING.value, now, now],
        )
        # Read later: in pipeline mode the statement goes out now, its answer comes
        # with the next read of the transaction.
        return lambda: {r[0] for r in cursor.fetchall()}


#: PostgreSQL types of the instance columns a step updates.
_COLUMN_TYPES = {
    **dict.fromkeys(
        (
            "status",
            "execution_id",
            "input",
            "output",
            "failure",
            "custom_status",
            "pause_reason",
            "pause_by",
            "pause_source",
            "lease",
            "version",
            "awaiting",
        ),
        "text",
    ),
    **dict.fromkeys(
        (
            "updated_at",
            "started_at",
            "completed_at",
            "pause_since",
            "pause_resume_at",
            "next_due",
            "lease_until",
        ),
        "float8",
    ),
    **dict.fromkeys(("generation", "history_len", "claims"), "int"),
}


#: PostgreSQL types of every instance column, for rows inserted from JSON.
_INSTANCE_TYPES = {
    **_COLUMN_TYPES,
    **dict.fromkeys(
        (
            "instance_id",
            "name",
            "parent_instance_id",
            "parent_execution_id",
            "tags",
            "trace_parent",
        ),
        "text",
    ),
    **dict.fromkeys(("created_at", "start_at"), "float8"),
    "parent_task_id": "int",
}
#: Many instances inserted in one statement whose text does not depend on their number.
_INSERT_INSTANCES = (
    f"INSERT INTO instances ({INSTANCE_COLUMNS}) SELECT {INSTANCE_COLUMNS} "
    "FROM json_to_recordset(?::json) AS x("
    + ", ".join(f"{name} {_INSTANCE_TYPES[name]}" for name in INSTANCE_NAMES)
    + ") ON CONFLICT (instance_id) DO NOTHING RETURNING instance_id"
)


def _message_row(m: NewMessage) -> dict[str, Any]:
    """An inbox message as a JSON recordset row (columns i, e, t, ts, d, v)."""
    return {
        "i": m.instance_id,
        "e": m.execution_id,
        "t": m.event.type,
        "ts": m.event.ts,
        "d": event_text(m.event),
        "v": m.visible_at,
    }


def _json_rows(rows: list[dict[str, Any]]) -> str:
    """Rows as the JSON array a ``json_to_recordset`` reads."""
    return json.dumps(rows, separators=(",", ":"))


def parse_url(url: str) -> tuple[str, str]:
    """Split a tenuto PostgreSQL URL into a libpq conninfo URL and the schema name."""
    parts = split_url(url)
    query = parse_qsl(parts.query)
    schema = "tenuto"
    kept = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    if not _SCHEMA_RE.match(schema):
        raise ValidationError(
            f"invalid schema name {schema!r}: use lowercase letters, digits and underscores"
        )
    scheme = "postgresql"
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(kept), "")), schema


class PostgresStore(Store):
    """tenuto's state in a PostgreSQL schema."""

    driver_errors = (psycopg.Error,)  # PoolTimeout included

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
            open=True,
            timeout=15.0,
            name=f"tenuto-{self.schema}",
        )
        self._notifier: _Notifier | None = None
        self._lock = threading.Lock()
        # Marks this store's own notifications, which its notifier does not echo.
        self._token = uuid.uuid4().hex[:12]

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        conn.commit()

    def _migrate(self) -> None:
        """Create or upgrade the schema; again if the connection drops on the way (the
        migration is one transaction, so a retry starts from a clean slate)."""
        for attempt in range(_MIGRATE_ATTEMPTS):
            try:
                return self._migrate_once()
            except psycopg.OperationalError as exc:
                if attempt + 1 == _MIGRATE_ATTEMPTS:
                    raise
                log.warning(
                    "creating or migrating the schema failed (%s); retrying", _one_line(exc)
                )
                time.sleep(0.1 * 2**attempt)

    def _migrate_once(self) -> None:
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
    def transaction(self, origin: Listener | None = None, durable: bool = True) -> Iterator[Tx]:
        with self.pool.connection() as conn:
            tx = _PgTx(_Cursor(conn))
            committing = False
            try:
                # Pipeline mode: statements whose results are not read go out without
                # waiting for the server: a round trip per read, not per statement.
                with conn.pipeline(), conn.transaction():
                    if not durable:
                        conn.execute("SET LOCAL synchronous_commit = off")
                    yield tx
                    tx.flush()
                    if tx.wakes:
                        # Other processes learn of the change from the notification; this
                        # process's listeners are pulsed directly (and skip their echo).
                        payload = f"{self._token}|{','.join(sorted(tx.wakes))}"
                        conn.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))
                    committing = True
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if not committing:  # the commit was never sent: nothing of this happened
                    exc.add_note(_UNCOMMITTED)
                if conn.broken:
                    conn.close()  # the pool then replaces it instead of handing it out
                raise
        tx.committed()
        if tx.wakes:
            self._hub.pulse(tx.wakes, exclude=origin.event if origin else None)

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        # Each read its own statement (as READ COMMITTED gives anyway): one round trip per
        # read, without a BEGIN and a COMMIT around it.
        with self.pool.connection() as conn:
            conn.autocommit = True
            try:
                yield SqlReader(_Cursor(conn))
            finally:
                if not conn.broken:
                    conn.autocommit = False

    @contextmanager
    def snapshot(self) -> Iterator[Reader]:
        # One REPEATABLE READ transaction: every read sees the same committed state.
        with self.pool.connection() as conn:
            try:
                with conn.transaction():
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    yield SqlReader(_Cursor(conn))
            except (psycopg.OperationalError, psycopg.InterfaceError):
                if conn.broken:
                    conn.close()  # the pool then replaces it instead of handing it out
                raise

    def listener(self, topics: Iterable[str] = TOPICS) -> Listener:
        with self._lock:
            if self._notifier is None or not self._notifier.is_alive():
                self._notifier = _Notifier(self)
                self._notifier.start()
        return _PgListener(self, topics)

    def is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, errors.DeadlockDetected | errors.SerializationFailure):
            return True
        return _UNCOMMITTED in getattr(exc, "__notes__", ())

    def outage(self, exc: BaseException) -> str | None:
        if isinstance(exc, PoolTimeout):
            return f"no connection to PostgreSQL could be made ({_one_line(exc)})"
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and not (
            isinstance(exc, errors.DeadlockDetected | errors.SerializationFailure)
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
                        for note in conn.notifies(timeout=0.1, stop_after=1):
                            origin, _, topics = note.payload.partition("|")
                            if origin != self.store._token:
                                self.store._hub.pulse(topics.split(",") if topics else TOPICS)
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
    def __init__(self, store: PostgresStore, topics: Iterable[str]) -> None:
        self._hub = store._hub
        self.event = self._hub.listen(topics)

    def wait(self, timeout: float) -> bool:
        fired = self.event.wait(max(timeout, 0))
        self.event.clear()
        return fired

    def kick(self) -> None:
        self.event.set()

    def close(self) -> None:
        self._hub.unlisten(self.event)
