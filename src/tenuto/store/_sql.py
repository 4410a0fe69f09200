"""The SQL shared by the SQLite and PostgreSQL stores.

Statements are written once, with ``?`` placeholders; a :class:`Dialect` turns them into
the backend's form and supplies the few pieces that differ (list parameters, row
locking). Only whitelisted column names are ever formatted into SQL; every value is a
bound parameter.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .. import _json
from ..history import Event, Message
from ..status import PAUSABLE, TERMINAL, Status
from .base import (
    INSTANCE_FIELDS,
    ActivityRow,
    HistoryRow,
    InstanceRow,
    NewActivity,
    NewMessage,
    Reader,
    Selection,
    StandingPauseRow,
    Tx,
    Versions,
    WorkerRow,
    WorkRow,
    chunks,
)

INSTANCE_COLUMNS = (
    "instance_id, name, status, execution_id, generation, input, output, failure, "
    "custom_status, created_at, updated_at, started_at, completed_at, start_at, "
    "parent_instance_id, "
    "parent_execution_id, parent_task_id, pause_reason, pause_by, pause_since, "
    "pause_resume_at, pause_source, history_len, next_due, lease, lease_until, claims, "
    "version, tags, trace_parent"
)
INSTANCE_NAMES = [name.strip() for name in INSTANCE_COLUMNS.split(",")]
_ACTIVITY_COLUMNS = (
    "id, instance_id, execution_id, task_id, name, input, retry, attempt, created_at, lease, "
    "trace_parent"
)
#: Live and not paused, as stored (see :data:`tenuto.status.PAUSABLE`).
_PAUSABLE = tuple(s.value for s in PAUSABLE)
#: The final statuses, as stored.
_TERMINAL = tuple(s.value for s in TERMINAL)
#: An activity type under a standing pause (a condition on the activities table).
_TYPE_HELD = (
    "EXISTS (SELECT 1 FROM standing_pauses sp WHERE sp.kind = 'activity'"
    " AND sp.name = activities.name)"
)
#: An instance is running, unleased, with nothing due (a condition on the instances
#: table; parameters: now, now, now).
AS_LEFT = (
    "status = 'RUNNING' AND (lease IS NULL OR lease_until < ?)"
    " AND (next_due IS NULL OR next_due > ?)"
    " AND NOT EXISTS (SELECT 1 FROM inbox m WHERE m.instance_id = instances.instance_id"
    " AND m.visible_at <= ?)"
)
#: An activity's instance is paused (a condition on the activities table).
_INSTANCE_PAUSED = (
    "EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = activities.instance_id"
    " AND i.status = 'PAUSED')"
)
_STANDING_COLUMNS = "kind, name, reason, by, since, resume_at"
_WORKER_COLUMNS = (
    "id, host, pid, kind, started_at, last_seen, lease_seconds, orchestrators, activities, running"
)
_WORKER_NAMES = [name.strip() for name in _WORKER_COLUMNS.split(",")]
#: Rows read from the head of the due index to find the next due time (see _next_due).
_HEAD = 16
#: Most list parameters bound in one statement (SQLite's limit is 32766).
BATCH = 900


def instance_row(row: Sequence[Any]) -> InstanceRow:
    values = list(row)
    values[2] = Status(values[2])
    return InstanceRow(*values)


def _activity_row(row: Sequence[Any]) -> ActivityRow:
    return ActivityRow(*row)


def _event(type_: str, ts: float, data: str) -> Event:
    return Event(type_, ts, _json.loads(data), data)


def event_text(event: Event) -> str:
    """The JSON text to store for ``event``'s fields."""
    return event.raw if event.raw is not None else _json.dumps_record(event.data)


class Dialect(abc.ABC):
    """What differs between backends in otherwise shared SQL."""

    #: Appended to claims: row locks that other claimers skip.
    skip_locked: str = ""
    #: Appended to reads that precede an update of the same rows.
    for_update: str = ""
    #: Most values bound in one list parameter (see :data:`BATCH`).
    batch: int = BATCH

    @abc.abstractmethod
    def sql(self, text: str) -> str:
        """Convert ``?`` placeholders to the driver's style."""

    @abc.abstractmethod
    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """An SQL condition ``column IN values`` and its parameters."""

    def names(
        self, names: Sequence[str] | None, exclude: Sequence[str] = (), versions: Versions = None
    ) -> tuple[str, list[Any]]:
        """An SQL condition on the ``name`` column: in ``names`` (``None``: any name)
        and not in ``exclude``; a name ``versions`` lists only with one of its versions."""
        parts, params = ["1 = 1"], []
        pinned = [n for n in names or () if versions and versions.get(n)]
        if pinned:
            assert names is not None and versions is not None
            alternatives = []
            free = [n for n in names if n not in pinned]
            if free:
                cond, more = self.in_list("name", free)
                alternatives.append(cond)
                params += more
            for name in pinned:
                cond, more = self.in_list("version", versions[name])
                alternatives.append(f"(name = ? AND {cond})")
                params += [name, *more]
            parts.append(f"({' OR '.join(alternatives)})")
        elif names is not None:
            cond, more = self.in_list("name", names)
            parts.append(cond)
            params += more
        if exclude:
            cond, more = self.in_list("name", exclude)
            parts.append(f"NOT ({cond})")
            params += more
        return " AND ".join(parts), params


class SqlCursor(abc.ABC):
    """The minimal database access the shared SQL needs."""

    dialect: Dialect

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns a cursor (its rows are read with ``fetchall``)."""

    @abc.abstractmethod
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self.execute(sql, params).fetchall())


def filter_sql(dialect: Dialect, flt: Selection) -> tuple[str, list[Any]]:
    """A WHERE condition (never empty) and parameters for a :class:`Selection`."""
    conds: list[str] = []
    params: list[Any] = []
    if flt.statuses:
        cond, more = dialect.in_list("status", [s.value for s in flt.statuses])
        conds.append(cond)
        params += more
    if flt.name is not None:
        conds.append("name = ?")
        params.append(flt.name)
    if flt.created_from is not None:
        conds.append("created_at >= ?")
        params.append(flt.created_from)
    if flt.created_to is not None:
        conds.append("created_at < ?")
        params.append(flt.created_to)
    if flt.id_prefix:
        # Range comparison rather than LIKE: no escaping, and it uses the primary key.
        conds.append("instance_id >= ? AND instance_id < ?")
        params += [flt.id_prefix, flt.id_prefix + "\U0010ffff"]
    if flt.ids:
        cond, more = dialect.in_list("instance_id", list(flt.ids))
        conds.append(cond)
        params += more
    return (" AND ".join(conds) or "1 = 1"), params


class SqlReader(Reader):
    """Reads shared by the SQL backends."""

    def __init__(self, cur: SqlCursor) -> None:
        self.cur = cur
        self.d = cur.dialect

    def _q(self, text: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.cur.fetchall(self.d.sql(text), params)

    def get_instance(self, instance_id: str) -> InstanceRow | None:
        rows = self._q(
            f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE instance_id = ?", (instance_id,)
        )
        return instance_row(rows[0]) if rows else None

    def load_history(self, instance_id: str, after: int = 0) -> list[Event]:
        rows = self._q(
            "SELECT type, ts, data FROM history WHERE instance_id = ? AND seq >= ? ORDER BY seq",
            (instance_id, after),
        )
        return [_event(*r) for r in rows]

    def query(
        self, flt: Selection, limit: int, after: tuple[float, str] | None
    ) -> list[InstanceRow]:
        where, params = filter_sql(self.d, flt)
        if after is not None:
            where += " AND (created_at < ? OR (created_at = ? AND instance_id < ?))"
            params += [after[0], after[0], after[1]]
        rows = self._q(
            f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE {where} "
            "ORDER BY created_at DESC, instance_id DESC LIMIT ?",
            [*params, limit],
        )
        return [instance_row(r) for r in rows]

    def count_by_status(self, flt: Selection | None = None) -> dict[Status, int]:
        where, params = filter_sql(self.d, flt or Selection())
        rows = self._q(
            f"SELECT status, COUNT(*) FROM instances WHERE {where} GROUP BY status", params
        )
        counts = dict.fromkeys(Status, 0)
        for status, count in rows:
            counts[Status(status)] = count
        return counts

    def next_work_at(
        self,
        orchestrators: Sequence[str] | None,
        activities: Sequence[str] | None,
        exclude: Sequence[str] = (),
        versions: Versions = None,
    ) -> float | None:
        times: list[float] = []
        if orchestrators is None or orchestrators:
            at = self._next_due(orchestrators, exclude, versions)
            if at is not None:
                times.append(at)
        if activities is None or activities:
            cond, params = self.d.names(activities, exclude)
            row = self._q(
                f"SELECT MIN(visible_at) FROM activities WHERE held = 0 AND {cond}", params
            )
            if row and row[0][0] is not None:
                times.append(row[0][0])
        for table, column in (("instances", "pause_resume_at"), ("standing_pauses", "resume_at")):
            row = self._q(f"SELECT MIN({column}) FROM {table} WHERE {column} IS NOT NULL")
            if row and row[0][0] is not None:
                times.append(row[0][0])
        return min(times) if times else None

    def _next_due(
        self, names: Sequence[str] | None, exclude: Sequence[str], versions: Versions
    ) -> float | None:
        """The earliest time an orchestration of ``names`` is due (a step in progress
        elsewhere: when its lease runs out), or earlier, never later.

        Read from the head of the ``next_due`` index (per name, where names are given)
        rather than as a MIN over every row with a due time: a store holding many
        instances scheduled far ahead would otherwise cost every idle worker a scan of
        them all, once a second."""
        cond, params = self.d.names(names, exclude, versions)
        times: list[float] = []
        tail = f"next_due IS NOT NULL AND {cond} ORDER BY next_due LIMIT ?"
        heads: list[tuple[str, list[str]]] = [
            ("SELECT next_due, lease_until FROM instances WHERE " + tail, [])
        ]
        if names is not None:
            by_name = "SELECT next_due, lease_until FROM instances WHERE name = ? AND " + tail
            heads = [(by_name, [n]) for n in names]
        for text, name in heads:
            rows = self._q(text, [*name, *params, _HEAD])
            times += [max(due, until or due) for due, until in rows]
            if len(rows) == _HEAD:  # all leased, perhaps: the next row is due no earlier
                times.append(rows[-1][0])
        return min(times) if times else None

    def as_left(self, items: Sequence[tuple[str, str, int]], now: float) -> set[str]:
        wanted = {(i, e, n) for i, e, n in items}
        found: set[str] = set()
        for part in chunks(sorted({i for i, _, _ in items}), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            for row in self._q(
                "SELECT instance_id, execution_id, history_len FROM instances "
                f"WHERE {cond} AND {AS_LEFT}",
                [*params, now, now, now],
            ):
                if tuple(row) in wanted:
                    found.add(row[0])
        return found

    def statuses(self, ids: Sequence[str]) -> dict[str, Status]:
        found: dict[str, Status] = {}
        for part in chunks(list(ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            for iid, status in self._q(
                f"SELECT instance_id, status FROM instances WHERE {cond}", params
            ):
                found[iid] = Status(status)
        return found

    def finished_instances(self, ids: Sequence[str]) -> list[InstanceRow]:
        rows: list[InstanceRow] = []
        for part in chunks(list(ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            marks = ", ".join("?" for _ in _TERMINAL)
            rows += map(
                instance_row,
                self._q(
                    f"SELECT {INSTANCE_COLUMNS} FROM instances "
                    f"WHERE {cond} AND status IN ({marks})",
                    [*params, *_TERMINAL],
                ),
            )
        return rows

    def standing_pauses(
        self, kind: str | None = None, names: Sequence[str] | None = None
    ) -> list[StandingPauseRow]:
        return self.standing_pauses_later(kind, names)()

    def standing_pauses_later(
        self, kind: str | None = None, names: Sequence[str] | None = None
    ) -> Callable[[], list[StandingPauseRow]]:
        conds, params = ["1 = 1"], []
        if kind is not None:
            conds.append("kind = ?")
            params.append(kind)
        if names is not None:
            cond, more = self.d.in_list("name", names)
            conds.append(cond)
            params += more
        cursor = self.cur.execute(
            self.d.sql(
                f"SELECT {_STANDING_COLUMNS} FROM standing_pauses WHERE {' AND '.join(conds)} "
                "ORDER BY since, kind, name"
            ),
            params,
        )
        return lambda: [StandingPauseRow(*r) for r in cursor.fetchall()]

    def held_activities(self, instance_ids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for part in chunks(list(instance_ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            for iid, name in self._q(
                f"SELECT DISTINCT instance_id, name FROM activities WHERE {cond} "
                f"AND lease IS NULL AND {_TYPE_HELD} ORDER BY instance_id, name",
                params,
            ):
                found.setdefault(iid, []).append(name)
        return found

    def known_names(self, kind: str) -> list[str]:
        return [
            r[0] for r in self._q("SELECT name FROM names WHERE kind = ? ORDER BY name", (kind,))
        ]

    def setting(self, key: str) -> str | None:
        rows = self._q("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def histories(self, instance_ids: Sequence[str]) -> dict[str, list[Event]]:
        found: dict[str, list[Event]] = {iid: [] for iid in instance_ids}
        for part in chunks(list(instance_ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            for iid, type_, ts, data in self._q(
                f"SELECT instance_id, type, ts, data FROM history WHERE {cond} "
                "ORDER BY instance_id, seq",
                params,
            ):
                found[iid].append(_event(type_, ts, data))
        return found

    def inbox_of(self, instance_ids: Sequence[str]) -> dict[str, list[Message]]:
        found: dict[str, list[Message]] = {iid: [] for iid in instance_ids}
        for part in chunks(list(instance_ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            for mid, iid, eid, type_, ts, data, visible_at in self._q(
                "SELECT id, instance_id, execution_id, type, ts, data, visible_at FROM inbox "
                f"WHERE {cond} ORDER BY id",
                params,
            ):
                found[iid].append(Message(mid, iid, eid, _event(type_, ts, data), visible_at))
        return found

    def activities_of(self, instance_ids: Sequence[str]) -> list[ActivityRow]:
        rows: list[ActivityRow] = []
        for part in chunks(list(instance_ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            rows += map(
                _activity_row,
                self._q(f"SELECT {_ACTIVITY_COLUMNS} FROM activities WHERE {cond}", params),
            )
        return sorted(rows, key=lambda a: a.id)

    def page_ids(self, flt: Selection, after: str | None, limit: int) -> list[str]:
        where, params = filter_sql(self.d, flt)
        if after is not None:
            where += " AND instance_id > ?"
            params.append(after)
        rows = self._q(
            f"SELECT instance_id FROM instances WHERE {where} ORDER BY instance_id LIMIT ?",
            [*params, limit],
        )
        return [r[0] for r in rows]

    def work_rows(self, instance_ids: Sequence[str]) -> list[WorkRow]:
        rows: list[WorkRow] = []
        for part in chunks(list(instance_ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            for iid, task_id, name, attempt, held, type_held, lease, started, visible in self._q(
                "SELECT instance_id, task_id, name, attempt, held, "
                f"CASE WHEN {_TYPE_HELD} THEN 1 ELSE 0 END, lease, started_at, visible_at "
                f"FROM activities WHERE {cond} ORDER BY id",
                params,
            ):
                rows.append(
                    WorkRow(
                        iid, task_id, name, attempt, bool(held), bool(type_held),
                        lease, started, visible,
                    )
                )  # fmt: skip
        return rows

    def awaiting(self, instance_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for part in chunks(list(instance_ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            found.update(
                self._q(
                    f"SELECT instance_id, awaiting FROM instances WHERE {cond} "
                    "AND awaiting IS NOT NULL",
                    params,
                )
            )
        return found

    def children_of(self, parent_ids: Sequence[str]) -> list[InstanceRow]:
        rows: list[InstanceRow] = []
        for part in chunks(list(parent_ids), self.d.batch):
            cond, params = self.d.in_list("parent_instance_id", part)
            rows += map(
                instance_row,
                self._q(
                    f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE {cond} "
                    "ORDER BY created_at, instance_id",
                    params,
                ),
            )
        return rows

    def workers(self, now: float) -> list[WorkerRow]:
        return [
            WorkerRow(*r)
            for r in self._q(
                f"SELECT {_WORKER_COLUMNS} FROM workers WHERE last_seen + lease_seconds >= ? "
                "ORDER BY id",
                (now,),
            )
        ]


class SqlTx(SqlReader, Tx):
    """The write primitives, in SQL shared by the backends."""

    def __init__(self, cur: SqlCursor) -> None:
        SqlReader.__init__(self, cur)
        Tx.__init__(self)

    def _x(self, text: str, params: Sequence[Any] = ()) -> Any:
        return self.cur.execute(self.d.sql(text), params)

    def _batch(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        """Run statements and return their rows, each read before the next is sent (SQLite
        reuses a prepared statement only once its answer was read; PostgreSQL's store
        sends its batches as single statements instead)."""
        return [self._q(text, params) for text, params in statements]

    def _many(self, text: str, rows: Iterable[Sequence[Any]]) -> None:
        self.cur.executemany(self.d.sql(text), rows)

    # -- instances -----------------------------------------------------------------

    def insert_instances(self, rows: Sequence[InstanceRow]) -> list[bool]:
        # RETURNING rather than rowcount: rows read back are exact in pipeline mode too.
        marks = ", ".join("?" * len(INSTANCE_NAMES))
        text = (
            f"INSERT INTO instances ({INSTANCE_COLUMNS}) VALUES ({marks}) "
            "ON CONFLICT (instance_id) DO NOTHING RETURNING instance_id"
        )
        statements = []
        for row in rows:
            values = [getattr(row, name) for name in INSTANCE_NAMES]
            values[2] = row.status.value
            statements.append((text, values))
        return [bool(r) for r in self._batch(statements)]

    def lock_instances(self, ids: Sequence[str]) -> list[InstanceRow]:
        rows: list[InstanceRow] = []
        for part in chunks(list(ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            rows += [
                instance_row(r)
                for r in self._q(
                    f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE {cond} "
                    f"ORDER BY instance_id {self.d.for_update}",
                    params,
                )
            ]
        return rows

    @staticmethod
    def _assignments(changes: dict[str, Any]) -> tuple[str, list[Any]]:
        unknown = set(changes) - INSTANCE_FIELDS
        if unknown:
            raise ValueError(f"not an updatable instance column: {sorted(unknown)}")
        cols = sorted(changes)
        return ", ".join(f"{c} = ?" for c in cols), [
            v.value if isinstance(v, Status) else v for v in (changes[c] for c in cols)
        ]

    def update_instance(self, instance_id: str, changes: dict[str, Any]) -> None:
        sets, params = self._assignments(changes)
        self._x(f"UPDATE instances SET {sets} WHERE instance_id = ?", [*params, instance_id])

    def update_instances(self, ids: Sequence[str], changes: dict[str, Any]) -> None:
        sets, params = self._assignments(changes)
        for part in chunks(list(ids), self.d.batch):
            cond, more = self.d.in_list("instance_id", part)
            self._x(f"UPDATE instances SET {sets} WHERE {cond}", [*params, *more])

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
        cond, params = self.d.names(names, exclude, versions)
        claimed = self._q(
            "UPDATE instances SET lease = ?, lease_until = ?, claims = claims + 1 "
            "WHERE instance_id IN ("
            "  SELECT instance_id FROM instances WHERE next_due IS NOT NULL AND next_due <= ?"
            f"  AND (lease_until IS NULL OR lease_until < ?) AND {cond}"
            f"  ORDER BY next_due LIMIT ? {self.d.skip_locked}"
            f") RETURNING {INSTANCE_COLUMNS}",
            [lease, lease_until, now, now, *params, limit],
        )
        rows = sorted((instance_row(r) for r in claimed), key=lambda r: r.next_due or 0.0)
        inbox = self._load_messages([r.instance_id for r in rows]) if rows else {}
        return [(r, inbox[r.instance_id]) for r in rows]

    def claim_for_results(
        self,
        items: Sequence[tuple[str, str, int, int, str]],
        now: float,
        lease: str,
        lease_until: float,
    ) -> Callable[[], dict[str, bool]]:
        statements = [
            (
                f"UPDATE instances SET lease = ?, lease_until = ? WHERE instance_id = ? "
                f"AND execution_id = ? AND history_len = ? AND {AS_LEFT} RETURNING instance_id",
                [lease, lease_until, instance_id, execution_id, history_len, now, now, now],
            )
            for instance_id, execution_id, history_len, _, _ in sorted(items)
        ]
        leased = {r[0][0] for r in self._batch(statements) if r}
        mine = [(aid, alease) for iid, _, _, aid, alease in items if iid in leased]
        taken = self._take_activities(mine) if mine else set()
        answer = {iid: aid in taken for iid, _, _, aid, _ in items if iid in leased}
        return lambda: answer

    def update_leased_instances(
        self, items: Sequence[tuple[str, str, int, dict[str, Any]]], verify: bool = True
    ) -> list[bool]:
        statements = []
        for instance_id, lease, history_len, changes in items:
            sets, params = self._assignments(changes)
            statements.append(
                (
                    f"UPDATE instances SET {sets} WHERE instance_id = ? AND lease = ? "
                    "AND history_len = ? AND status IN (?, ?) RETURNING instance_id",
                    [*params, instance_id, lease, history_len, *_PAUSABLE],
                )
            )
        return [bool(r) for r in self._batch(statements)]

    def release_instances(self, ids: Sequence[str], lease: str) -> None:
        for part in chunks(list(ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            self._x(
                f"UPDATE instances SET lease = NULL, lease_until = NULL WHERE {cond} AND lease = ?",
                [*params, lease],
            )

    def select_ids(self, flt: Selection, limit: int | None = None) -> list[str]:
        where, params = filter_sql(self.d, flt)
        tail = "" if limit is None else " LIMIT ?"
        if limit is not None:
            params.append(limit)
        rows = self._q(
            f"SELECT instance_id FROM instances WHERE {where} ORDER BY instance_id{tail}",
            params,
        )
        return [r[0] for r in rows]

    def children(self, parent_ids: Sequence[str], statuses: Sequence[Status]) -> list[str]:
        found: list[str] = []
        scond, sparams = self.d.in_list("status", [s.value for s in statuses])
        for part in chunks(list(parent_ids), self.d.batch):
            cond, params = self.d.in_list("parent_instance_id", part)
            # Sorted here, not by the query: with an ORDER BY, SQLite walks the whole
            # primary key in order rather than look the parents up in their index.
            found += [
                r[0]
                for r in self._q(
                    f"SELECT instance_id FROM instances WHERE {cond} AND {scond}",
                    [*params, *sparams],
                )
            ]
        return sorted(found)

    def due_resumes(self, now: float, limit: int) -> list[str]:
        rows = self._q(
            "SELECT instance_id FROM instances WHERE pause_resume_at IS NOT NULL "
            "AND pause_resume_at <= ? AND status = ? "
            f"ORDER BY pause_resume_at LIMIT ? {self.d.skip_locked}",
            (now, Status.PAUSED.value, limit),
        )
        return [r[0] for r in rows]

    def set_due(self, instance_ids: Sequence[str], at: float) -> None:
        for part in chunks(list(instance_ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            # Every named row is written (and so locked), RUNNING or not: a concurrent
            # resume then waits for this transaction and sees its messages, or commits
            # first and this update sees the instance RUNNING. No wake-up is lost.
            self._x(
                "UPDATE instances SET next_due = CASE WHEN status = ? AND "
                "(next_due IS NULL OR next_due > ?) THEN ? ELSE next_due END "
                f"WHERE {cond}",
                [Status.RUNNING.value, at, at, *params],
            )

    def recompute_due(self, instance_ids: Sequence[str], now: float) -> None:
        for part in chunks(list(instance_ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            self._x(
                "UPDATE instances SET next_due = CASE "
                "WHEN status = ? THEN COALESCE(start_at, created_at) "
                "ELSE (SELECT MIN(m.visible_at) FROM inbox m "
                "      WHERE m.instance_id = instances.instance_id) END "
                f"WHERE {cond} AND status IN (?, ?)",
                [Status.PENDING.value, *params, *_PAUSABLE],
            )

    def expired(
        self,
        status: Status,
        before: float,
        names: Sequence[str] | None,
        exclude: Sequence[str],
        limit: int,
    ) -> list[str]:
        cond, params = self.d.names(names, exclude)
        rows = self._q(
            "SELECT instance_id FROM instances WHERE status = ? AND completed_at IS NOT NULL "
            f"AND completed_at < ? AND {cond} ORDER BY completed_at LIMIT ? {self.d.skip_locked}",
            [status.value, before, *params, limit],
        )
        return [r[0] for r in rows]

    def put_setting(self, key: str, value: str | None) -> None:
        if value is None:
            self._x("DELETE FROM settings WHERE key = ?", (key,))
        else:
            self._x(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def delete_instances(self, ids: Sequence[str]) -> int:
        deleted = 0
        for part in chunks(list(ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            for table in ("history", "inbox", "activities"):
                self._x(f"DELETE FROM {table} WHERE {cond}", params)
            deleted += len(
                self._q(f"DELETE FROM instances WHERE {cond} RETURNING instance_id", params)
            )
        return deleted

    # -- history -------------------------------------------------------------------

    def append_history(self, rows: Iterable[HistoryRow], skip_taken: bool = False) -> None:
        self._many(
            "INSERT INTO history (instance_id, seq, type, ts, data) VALUES (?, ?, ?, ?, ?)"
            + (" ON CONFLICT (instance_id, seq) DO NOTHING" if skip_taken else ""),
            [(r.instance_id, r.seq, r.event.type, r.event.ts, event_text(r.event)) for r in rows],
        )

    def register_names(
        self, orchestrators: Sequence[str], activities: Sequence[str], now: float
    ) -> None:
        rows = [("orchestrator", n, now) for n in orchestrators]
        rows += [("activity", n, now) for n in activities]
        if rows:
            self._many(
                "INSERT INTO names (kind, name, seen_at) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, name) DO UPDATE SET seen_at = excluded.seen_at",
                rows,
            )

    def insert_standing_pause(self, row: StandingPauseRow) -> bool:
        return bool(
            self._q(
                f"INSERT INTO standing_pauses ({_STANDING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, name) DO NOTHING RETURNING name",
                [row.kind, row.name, row.reason, row.by, row.since, row.resume_at],
            )
        )

    def delete_standing_pause(self, kind: str, name: str) -> StandingPauseRow | None:
        rows = self._q(
            f"DELETE FROM standing_pauses WHERE kind = ? AND name = ? "
            f"RETURNING {_STANDING_COLUMNS}",
            (kind, name),
        )
        return StandingPauseRow(*rows[0]) if rows else None

    def due_standing_resumes(self, now: float) -> list[tuple[str, str]]:
        rows = self._q(
            "SELECT kind, name FROM standing_pauses WHERE resume_at IS NOT NULL "
            "AND resume_at <= ? ORDER BY resume_at",
            (now,),
        )
        return [(r[0], r[1]) for r in rows]

    def hold_activity_type(self, name: str) -> list[str]:
        rows = self._q(
            "UPDATE activities SET held = 1 WHERE name = ? RETURNING instance_id, lease",
            (name,),
        )
        return sorted({iid for iid, lease in rows if lease is None})

    def release_activity_type(self, name: str) -> list[str]:
        rows = self._q(
            f"UPDATE activities SET held = 0 WHERE name = ? AND held = 1 "
            f"AND NOT {_INSTANCE_PAUSED} RETURNING id, instance_id",
            (name,),
        )
        released = self._hold_again([r[0] for r in rows])
        return sorted({iid for aid, iid in rows if aid not in released})

    def annotate(self, instance_ids: Sequence[str], event: Event) -> None:
        data = event_text(event)
        for part in chunks(list(instance_ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            self._x(
                "INSERT INTO history (instance_id, seq, type, ts, data) "
                f"SELECT instance_id, history_len, ?, ?, ? FROM instances WHERE {cond}",
                [event.type, event.ts, data, *params],
            )
            self._x(f"UPDATE instances SET history_len = history_len + 1 WHERE {cond}", params)

    def delete_history(self, instance_id: str) -> None:
        self._x("DELETE FROM history WHERE instance_id = ?", (instance_id,))

    # -- inbox ---------------------------------------------------------------------

    def add_messages(self, messages: Iterable[NewMessage]) -> None:
        self._many(
            "INSERT INTO inbox (instance_id, execution_id, type, ts, data, visible_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    m.instance_id,
                    m.execution_id,
                    m.event.type,
                    m.event.ts,
                    event_text(m.event),
                    m.visible_at,
                )
                for m in messages
            ],
        )

    def _load_messages(self, instance_ids: Sequence[str]) -> dict[str, list[Message]]:
        """Every pending message of each instance, in arrival order."""
        return self.inbox_of(instance_ids)

    def delete_messages(self, message_ids: Sequence[int]) -> None:
        for part in chunks(list(message_ids), self.d.batch):
            cond, params = self.d.in_list("id", part)
            self._x(f"DELETE FROM inbox WHERE {cond}", params)

    def delete_pending_work(
        self, instance_ids: Sequence[str], *, keep_events: bool = False
    ) -> None:
        for part in chunks(list(instance_ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            where = cond + " AND execution_id IS NOT NULL" if keep_events else cond
            self._x(f"DELETE FROM inbox WHERE {where}", params)
            self._x(f"DELETE FROM activities WHERE {cond}", params)

    # -- activities ----------------------------------------------------------------

    def insert_activities(self, rows: Iterable[NewActivity]) -> None:
        self._many(
            "INSERT INTO activities (instance_id, execution_id, task_id, name, input, retry, "
            "attempt, held, visible_at, created_at, trace_parent) SELECT ?, ?, ?, ?, ?, ?, 1, "
            "CASE WHEN ? = 1 OR EXISTS (SELECT 1 FROM standing_pauses sp WHERE "
            "sp.kind = 'activity' AND sp.name = ?) THEN 1 ELSE 0 END, ?, ?, ?",
            [
                (
                    a.instance_id,
                    a.execution_id,
                    a.task_id,
                    a.name,
                    a.input,
                    a.retry,
                    1 if a.held else 0,
                    a.name,
                    a.visible_at,
                    a.visible_at,
                    a.trace_parent,
                )
                for a in rows
            ],
        )

    def claim_activities(
        self,
        names: Sequence[str] | None,
        now: float,
        limit: int,
        lease: str,
        lease_until: float,
        exclude: Sequence[str] = (),
    ) -> list[ActivityRow]:
        cond, params = self.d.names(names, exclude)
        rows = self._q(
            "UPDATE activities SET lease = ?, visible_at = ?, started_at = ? WHERE id IN ("
            f"  SELECT id FROM activities WHERE held = 0 AND visible_at <= ? AND {cond}"
            # Checked here too, not only through held: a claim that commits after a
            # standing pause must not start what the pause was too early to hold.
            f"  AND NOT {_TYPE_HELD}"
            f"  ORDER BY visible_at, id LIMIT ? {self.d.skip_locked}"
            f") RETURNING {_ACTIVITY_COLUMNS}",
            [lease, lease_until, now, now, *params, limit],
        )
        return sorted((_activity_row(r) for r in rows), key=lambda a: a.id)

    def deliver_results(
        self, items: Sequence[tuple[int, str, NewMessage]], now: float
    ) -> Callable[[], set[int]]:
        if self.d.for_update:  # with row locks: instances first, as every transaction does
            self.lock_instances(sorted({m.instance_id for _, _, m in items}))
        taken = self._take_activities([(aid, lease) for aid, lease, _ in items])
        messages = [m for aid, _, m in items if aid in taken]
        if messages:
            self.add_messages(messages)
            self.set_due([m.instance_id for m in messages], now)
        return lambda: taken

    def _take_activities(self, items: Sequence[tuple[int, str]]) -> set[int]:
        """Delete leased activities given as ``(id, lease)``; returns the ids deleted
        (an activity whose lease was lost is not)."""
        taken: set[int] = set()
        for part in chunks(list(items), self.d.batch // 2):
            pairs = ", ".join("(?, ?)" for _ in part)
            rows = self._q(
                f"DELETE FROM activities WHERE (id, lease) IN (VALUES {pairs}) RETURNING id",
                [x for pair in part for x in pair],
            )
            taken.update(r[0] for r in rows)
        return taken

    def retry_activity(self, activity_id: int, lease: str, attempt: int, visible_at: float) -> bool:
        # A retry of a paused instance's activity is held like any queued activity.
        retried = bool(
            self._q(
                "UPDATE activities SET lease = NULL, attempt = ?, visible_at = ?, held = CASE "
                f"WHEN {_INSTANCE_PAUSED} OR {_TYPE_HELD} THEN 1 ELSE 0 END "
                "WHERE id = ? AND lease = ? RETURNING id",
                (attempt, visible_at, activity_id, lease),
            )
        )
        if retried:
            self._hold_again([activity_id])
        return retried

    def renew_leases(self, leases: Sequence[str], until: float) -> None:
        for part in chunks(list(leases), self.d.batch):
            cond, params = self.d.in_list("lease", part)
            self._x(f"UPDATE activities SET visible_at = ? WHERE {cond}", [until, *params])

    def hold_activities(self, instance_ids: Sequence[str]) -> None:
        for part in chunks(list(instance_ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            self._x(f"UPDATE activities SET held = 1 WHERE {cond}", params)

    def release_activities(self, instance_ids: Sequence[str]) -> None:
        for part in chunks(list(instance_ids), self.d.batch):
            cond, params = self.d.in_list("instance_id", part)
            released = self._q(
                f"UPDATE activities SET held = 0 WHERE {cond} AND held = 1 "
                f"AND NOT {_TYPE_HELD} RETURNING id",
                params,
            )
            self._hold_again([r[0] for r in released])

    def _hold_again(self, activity_ids: Sequence[int]) -> set[int]:
        """Hold again, among activities this transaction has just released, those whose
        instance is PAUSED or whose type is under a standing pause; returns their ids.

        A release decides from other rows (the instance, the standing pauses). Under
        PostgreSQL's READ COMMITTED, an UPDATE that waited for a row lock (held by a
        pause that then committed) still evaluates those other rows as of its own start,
        before the pause: it would release what the pause holds. This second statement
        starts after that wait, so it sees every pause committed by then; a pause still
        to commit locks these rows after this transaction and holds them itself.
        (SQLite serializes write transactions: there, it finds nothing.)"""
        held: set[int] = set()
        for part in chunks(list(activity_ids), self.d.batch):
            cond, params = self.d.in_list("id", part)
            held.update(
                r[0]
                for r in self._q(
                    f"UPDATE activities SET held = 1 WHERE {cond} "
                    f"AND ({_INSTANCE_PAUSED} OR {_TYPE_HELD}) RETURNING id",
                    params,
                )
            )
        return held

    # -- workers ---------------------------------------------------------------------

    def put_worker(self, row: WorkerRow) -> None:
        values = [
            row.id, row.host, row.pid, row.kind, row.started_at, row.last_seen,
            row.lease_seconds, row.orchestrators, row.activities, row.running,
        ]  # fmt: skip
        marks = ", ".join("?" for _ in values)
        # Every column but the id, from the constant list.
        sets = ", ".join(f"{c} = excluded.{c}" for c in _WORKER_NAMES[1:])
        self._x(
            f"INSERT INTO workers ({_WORKER_COLUMNS}) VALUES ({marks}) ON CONFLICT (id) DO "
            f"UPDATE SET {sets}",
            values,
        )

    def delete_workers(self, ids: Sequence[str] = (), seen_before: float | None = None) -> None:
        for part in chunks(list(ids), self.d.batch):
            cond, params = self.d.in_list("id", part)
            self._x(f"DELETE FROM workers WHERE {cond}", params)
        if seen_before is not None:
            self._x("DELETE FROM workers WHERE last_seen < ?", (seen_before,))
