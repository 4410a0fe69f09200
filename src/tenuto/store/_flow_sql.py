"""The SQL of schedules and flow-control limits, shared by the SQLite and PostgreSQL
stores (mixed into :class:`~tenuto.store._sql.SqlReader` and ``SqlTx``).

Limits are enforced by the claims: before a claim takes activities (or PENDING
instances) of a limited name, it locks that limit's row, counts what runs (and, for a
rate, what started in the last window) in the database, and takes no more than the rest.
Claimers of one limited name are so serialized (on SQLite every write transaction is),
and the count sees every claim committed before, by any worker process.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..status import TERMINAL, Status
from .flow import SCHEDULE_FIELDS, FlowReader, FlowTx, LimitRow, ScheduleRow

if TYPE_CHECKING:
    from ._sql import Dialect

_SCHEDULE_COLUMNS = (
    "schedule_id, orchestrator, input, spec, next_fire, last_run, buffered, watch_run, "
    "created_at, updated_at"
)
_LIMIT_COLUMNS = "kind, name, max_concurrent, per_second, reason, by, since, source"
_TERMINAL = tuple(s.value for s in TERMINAL)
#: Starts older than the window by this much are pruned (claimers that read the clock
#: before waiting for the limit's lock still count the starts their window covers).
_PRUNE_SLACK = 60.0
#: Old starts are pruned by one claim in this many (a statement saved on the others).
_PRUNE_EVERY = 16
_prunes = itertools.count()


#: Added to a rate's window: the claims are spaced by it, so that starts as the
#: activities see them (a moment after their claim, a moment that varies) keep to the rate.
RATE_MARGIN = 0.1


def rate_window(per_second: float) -> tuple[float, int]:
    """The rolling window of a rate: ``(seconds, starts allowed in any such window)``.
    A rate of 1/s or more allows ``floor(rate)`` starts in any second; a lower one,
    one start per ``1/rate`` seconds (each window :data:`RATE_MARGIN` longer)."""
    window = max(1.0, 1.0 / per_second)
    return window + RATE_MARGIN, max(1, math.floor(per_second * window + 1e-9))


class FlowSqlReader(FlowReader):
    """Reads of schedules and limits."""

    d: Dialect

    def _q(self, text: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError  # SqlReader's

    def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        rows = self._q(
            f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE schedule_id = ?", (schedule_id,)
        )
        return ScheduleRow(*rows[0]) if rows else None

    def list_schedules(
        self, orchestrator: str | None = None, id_prefix: str | None = None
    ) -> list[ScheduleRow]:
        conds, params = ["1 = 1"], []
        if orchestrator is not None:
            conds.append("orchestrator = ?")
            params.append(orchestrator)
        if id_prefix:
            conds.append("schedule_id >= ? AND schedule_id < ?")
            params += [id_prefix, id_prefix + "\U0010ffff"]
        rows = self._q(
            f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE {' AND '.join(conds)} "
            "ORDER BY schedule_id",
            params,
        )
        return [ScheduleRow(*r) for r in rows]

    def flow_limits(self, kind: str | None = None) -> list[LimitRow]:
        where, params = ("kind = ?", [kind]) if kind is not None else ("1 = 1", [])
        rows = self._q(
            f"SELECT {_LIMIT_COLUMNS} FROM flow_limits WHERE {where} ORDER BY kind, name", params
        )
        return [LimitRow(*r) for r in rows]

    def schedule_work(self, now: float) -> bool:
        return bool(
            self._q(
                "SELECT 1 FROM schedules s WHERE buffered IS NOT NULL OR watch_run IS NOT NULL "
                "OR (next_fire IS NOT NULL AND next_fire <= ? AND NOT EXISTS (SELECT 1 FROM "
                "standing_pauses sp WHERE sp.kind = 'schedule' AND sp.name = s.schedule_id)) "
                "LIMIT 1",
                (now,),
            )
        )

    def _limits_of(
        self, kind: str, names: Sequence[str] | None, exclude: Sequence[str], lock: bool
    ) -> dict[str, LimitRow]:
        """The limits of ``kind`` on ``names`` (``None``: any) but not ``exclude``;
        with ``lock``, every limit row of ``kind`` locked for update, in name order (one
        statement: a claim pays one read whether limits exist or not)."""
        tail = f"ORDER BY name {self.d.for_update}" if lock else "ORDER BY name"
        rows = self._q(f"SELECT {_LIMIT_COLUMNS} FROM flow_limits WHERE kind = ? {tail}", (kind,))
        skip = set(exclude)
        return {
            r[1]: LimitRow(*r)
            for r in rows
            if (names is None or r[1] in names) and r[1] not in skip
        }

    def _activity_room(self, limit: LimitRow, now: float) -> int:
        """How many more executions of a limited activity may start at ``now``."""
        window, allowed = rate_window(limit.per_second or 1.0)
        # Both counts in one statement (without a rate, the second counts nothing:
        # no start is later than infinity). No upper bound on ``at``: a claimer that
        # committed meanwhile with a later clock reading is counted too.
        since = now - window if limit.per_second is not None else math.inf
        running, started = self._q(
            "SELECT (SELECT COUNT(*) FROM activities WHERE name = ? AND lease IS NOT NULL "
            "AND visible_at > ?), (SELECT COUNT(*) FROM limit_starts WHERE name = ? AND at > ?)",
            (limit.name, now, limit.name, since),
        )[0]
        room = 1 << 30
        if limit.max_concurrent is not None:
            room = min(room, limit.max_concurrent - int(running))
        if limit.per_second is not None:
            room = min(room, allowed - int(started))
        return max(room, 0)

    def _orchestrator_room(self, limit: LimitRow, now: float) -> int:
        """How many more PENDING instances of a limited orchestrator may start at ``now``:
        its RUNNING instances count, and so do PENDING ones claimed for their first step."""
        if limit.max_concurrent is None:
            return 1 << 30
        running = self._q(
            "SELECT COUNT(*) FROM instances WHERE name = ? AND (status = ? "
            "OR (status = ? AND lease_until IS NOT NULL AND lease_until >= ?))",
            (limit.name, Status.RUNNING.value, Status.PENDING.value, now),
        )[0][0]
        return max(limit.max_concurrent - int(running), 0)

    def limit_blocks(
        self, orchestrators: Sequence[str] | None, activities: Sequence[str] | None
    ) -> tuple[list[str], list[str], list[float]]:
        """For a worker waiting for work: the orchestrators whose PENDING instances, and
        the activities whose executions, a limit stops from starting now (names to leave
        out of the next due time), and when some of those may start again."""
        limits = self.flow_limits()
        if not limits:
            return [], [], []
        now = time.time()
        blocked_o: list[str] = []
        blocked_a: list[str] = []
        times: list[float] = []
        for lim in limits:
            served = orchestrators if lim.kind == "orchestrator" else activities
            if served is not None and lim.name not in served:
                continue
            if lim.kind == "orchestrator" and self._orchestrator_room(lim, now) == 0:
                blocked_o.append(lim.name)
                # A step leased elsewhere is due when its lease runs out, at the earliest.
                rows = self._q(
                    "SELECT MIN(CASE WHEN lease_until > next_due THEN lease_until "
                    "ELSE next_due END) FROM instances WHERE name = ? AND status = ?",
                    (lim.name, Status.RUNNING.value),
                )
                times += [r[0] for r in rows if r[0] is not None]
            elif lim.kind == "activity" and self._activity_room(lim, now) == 0:
                blocked_a.append(lim.name)
                times += self._activity_reopens(lim)
        return blocked_o, blocked_a, times

    def _activity_reopens(self, limit: LimitRow) -> list[float]:
        """When a limited activity may start again: a lease running out, or the start
        that fills its rate window leaving it."""
        times = [
            r[0]
            for r in self._q(
                "SELECT MIN(visible_at) FROM activities WHERE name = ? AND lease IS NOT NULL",
                (limit.name,),
            )
            if r[0] is not None
        ]
        if limit.per_second is not None:
            window, allowed = rate_window(limit.per_second)
            rows = self._q(
                "SELECT at FROM limit_starts WHERE name = ? ORDER BY at DESC LIMIT ?",
                (limit.name, allowed),
            )
            if len(rows) == allowed:
                times.append(rows[-1][0] + window)
        return times


class FlowSqlTx(FlowSqlReader, FlowTx):
    """Writes of schedules and limits, and the limited part of claims."""

    def _x(self, text: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError  # SqlTx's

    def lock_schedules(self, ids: Sequence[str]) -> list[ScheduleRow]:
        if not ids:
            return []
        cond, params = self.d.in_list("schedule_id", sorted(set(ids)))
        rows = self._q(
            f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE {cond} "
            f"ORDER BY schedule_id {self.d.for_update}",
            params,
        )
        return [ScheduleRow(*r) for r in rows]

    def due_schedules(self, now: float, limit: int) -> list[ScheduleRow]:
        rows = self._q(
            f"SELECT {_SCHEDULE_COLUMNS} FROM schedules s "
            "WHERE ((next_fire IS NOT NULL AND next_fire <= ?) OR buffered IS NOT NULL) "
            "AND NOT EXISTS (SELECT 1 FROM standing_pauses sp WHERE sp.kind = 'schedule' "
            "AND sp.name = s.schedule_id) "
            f"ORDER BY schedule_id LIMIT ? {self.d.skip_locked}",
            (now, limit),
        )
        return [ScheduleRow(*r) for r in rows]

    def finished_watched_runs(self) -> list[tuple[str, str, Status | None]]:
        marks = ", ".join("?" for _ in _TERMINAL)
        # Only the schedule rows are locked (not the nullable side of the join).
        tail = self.d.skip_locked.replace("UPDATE", "UPDATE OF s")
        rows = self._q(
            "SELECT s.schedule_id, s.watch_run, i.status FROM schedules s "
            "LEFT JOIN instances i ON i.instance_id = s.watch_run "
            f"WHERE s.watch_run IS NOT NULL AND (i.status IS NULL OR i.status IN ({marks})) "
            f"ORDER BY s.schedule_id {tail}",
            _TERMINAL,
        )
        return [(r[0], r[1], None if r[2] is None else Status(r[2])) for r in rows]

    def insert_schedule(self, row: ScheduleRow) -> bool:
        return bool(
            self._q(
                f"INSERT INTO schedules ({_SCHEDULE_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (schedule_id) DO NOTHING RETURNING schedule_id",
                [
                    row.schedule_id,
                    row.orchestrator,
                    row.input,
                    row.spec,
                    row.next_fire,
                    row.last_run,
                    row.buffered,
                    row.watch_run,
                    row.created_at,
                    row.updated_at,
                ],
            )
        )

    def update_schedule(self, schedule_id: str, changes: dict[str, Any]) -> None:
        unknown = set(changes) - SCHEDULE_FIELDS
        if unknown:
            raise ValueError(f"not schedule columns: {sorted(unknown)}")
        if not changes:
            return
        sets = ", ".join(f"{column} = ?" for column in changes)
        self._x(
            f"UPDATE schedules SET {sets} WHERE schedule_id = ?", [*changes.values(), schedule_id]
        )

    def delete_schedule(self, schedule_id: str) -> bool:
        return bool(
            self._q(
                "DELETE FROM schedules WHERE schedule_id = ? RETURNING schedule_id", (schedule_id,)
            )
        )

    def put_limit(self, row: LimitRow, *, keep_client: bool = False) -> bool:
        return bool(
            self._q(
                f"INSERT INTO flow_limits ({_LIMIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, name) DO UPDATE SET max_concurrent = excluded.max_concurrent, "
                "per_second = excluded.per_second, reason = excluded.reason, by = excluded.by, "
                "since = excluded.since, source = excluded.source "
                "WHERE flow_limits.source <> 'client' OR ? = 0 RETURNING name",
                [
                    row.kind,
                    row.name,
                    row.max_concurrent,
                    row.per_second,
                    row.reason,
                    row.by,
                    row.since,
                    row.source,
                    1 if keep_client else 0,
                ],
            )
        )

    def delete_limit(self, kind: str, name: str) -> LimitRow | None:
        rows = self._q(
            f"DELETE FROM flow_limits WHERE kind = ? AND name = ? RETURNING {_LIMIT_COLUMNS}",
            (kind, name),
        )
        if kind == "activity":
            self._x("DELETE FROM limit_starts WHERE name = ?", (name,))
        return LimitRow(*rows[0]) if rows else None

    def set_priority(self, instance_ids: Sequence[str], priority: int) -> None:
        cond, params = self.d.in_list("instance_id", list(instance_ids))
        self._x(f"UPDATE instances SET priority = ? WHERE {cond}", [priority, *params])

    # -- limits, as the claims apply them ------------------------------------------

    def claim_limited_activities(
        self,
        names: Sequence[str] | None,
        exclude: Sequence[str],
        now: float,
        limit: int,
        claim: Callable[[Sequence[str] | None, Sequence[str], int], list[Any]],
    ) -> list[Any]:
        """Claim activities as ``claim(names, exclude, limit)`` does, within the limits:
        the unlimited names in one claim, then each limited name up to its room (its
        starts recorded for a rate)."""
        limits = self._limits_of("activity", names, exclude, lock=True)
        if not limits:
            return claim(names, exclude, limit)
        free = names is None or any(n not in limits and n not in exclude for n in names)
        taken = claim(names, [*exclude, *limits], limit) if free else []
        for name, lim in limits.items():
            room = min(self._activity_room(lim, now), limit - len(taken))
            if room <= 0:
                continue
            rows = claim([name], (), room)
            taken += rows
            if rows and lim.per_second is not None:
                if next(_prunes) % _PRUNE_EVERY == 0:
                    window, _ = rate_window(lim.per_second)
                    self._x(
                        "DELETE FROM limit_starts WHERE name = ? AND at < ?",
                        (name, now - window - _PRUNE_SLACK),
                    )
                marks = ", ".join("(?, ?)" for _ in rows)
                self._x(
                    f"INSERT INTO limit_starts (name, at) VALUES {marks}",
                    [value for _ in rows for value in (name, now)],
                )
        return taken

    def claim_limited_pending(
        self,
        names: Sequence[str] | None,
        exclude: Sequence[str],
        versions: Any,
        now: float,
        limit: int,
        lease: str,
        lease_until: float,
    ) -> tuple[list[Any], str, list[Any]]:
        """Claim the PENDING instances of limited orchestrators that their limits let
        start (highest priority first, then in start order); returns their rows (as
        ``INSTANCE_COLUMNS``), and a condition (with its parameters) that the claim of the rest
        adds so as not to take other PENDING instances of those orchestrators."""
        from ._sql import INSTANCE_COLUMNS  # _sql imports this module

        limits = self._limits_of("orchestrator", names, exclude, lock=True)
        if not limits:
            return [], "", []
        rows: list[Any] = []
        for name, lim in limits.items():
            room = min(self._orchestrator_room(lim, now), limit - len(rows))
            if room <= 0:
                continue
            cond, params = self.d.names([name], (), versions)
            rows += self._q(
                "UPDATE instances SET lease = ?, lease_until = ?, claims = claims + 1 "
                "WHERE instance_id IN ("
                "  SELECT instance_id FROM instances WHERE status = ? AND next_due IS NOT NULL"
                f"  AND next_due <= ? AND (lease_until IS NULL OR lease_until < ?) AND {cond}"
                "  ORDER BY priority DESC, created_at, instance_id"
                f"  LIMIT ? {self.d.skip_locked}"
                f") RETURNING {INSTANCE_COLUMNS}",
                [lease, lease_until, Status.PENDING.value, now, now, *params, room],
            )
        cond, params = self.d.in_list("name", sorted(limits))
        return rows, f" AND NOT (status = ? AND {cond})", [Status.PENDING.value, *params]
