"""The SQL of entities (see :mod:`tenuto.store.entity_base`), shared by the backends.

Mixed into :class:`~tenuto.store._sql.SqlReader` and :class:`~tenuto.store._sql.SqlTx`,
whose cursor helpers (``_q``, ``_x``, ``_many``, ``_batch``) and dialect it uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .base import chunks
from .entity_base import (
    ENTITY_FIELDS,
    EntityOpRow,
    EntityReads,
    EntityRow,
    EntityWrites,
    NewEntityOp,
    split_entity_id,
)

if TYPE_CHECKING:
    from ._sql import Dialect

ENTITY_COLUMNS = (
    "entity_id, name, key, state, locked_by, last_modified, pause_reason, pause_by, "
    "pause_since, pause_resume_at, lease, lease_until"
)
_E_COLUMNS = ", ".join(f"e.{c.strip()}" for c in ENTITY_COLUMNS.split(","))
_OP_COLUMNS = (
    "id, entity_id, kind, operation, input, caller_id, caller_execution, caller_task, "
    "lock_set, visible_at, created_at"
)
_O_COLUMNS = ", ".join(f"o.{c.strip()}" for c in _OP_COLUMNS.split(","))
#: An operation the entity ``e`` may run: from anyone while unlocked, else from the holder.
_MAY_RUN = "(e.locked_by IS NULL OR o.caller_id = e.locked_by)"
#: The entity ``e`` is under a standing pause of its name.
_TYPE_PAUSED = (
    "EXISTS (SELECT 1 FROM standing_pauses sp WHERE sp.kind = 'entity' AND sp.name = e.name)"
)


class SqlEntityReads(EntityReads):
    if TYPE_CHECKING:
        d: Dialect

        def _q(self, text: str, params: Sequence[Any] = ()) -> list[Any]: ...

    def get_entities(self, entity_ids: Sequence[str]) -> list[EntityRow]:
        return self._entity_rows(entity_ids, "")

    def _entity_rows(self, entity_ids: Sequence[str], lock: str) -> list[EntityRow]:
        rows: list[EntityRow] = []
        for part in chunks(sorted(set(entity_ids)), self.d.batch):
            cond, params = self.d.in_list("entity_id", part)
            rows += [
                EntityRow(*r)
                for r in self._q(
                    f"SELECT {ENTITY_COLUMNS} FROM entities WHERE {cond} ORDER BY entity_id {lock}",
                    params,
                )
            ]
        return rows

    def query_entities(
        self,
        name: str | None,
        key_prefix: str | None,
        modified_from: float | None,
        modified_to: float | None,
        limit: int,
        after: str | None,
    ) -> list[EntityRow]:
        conds: list[str] = ["1 = 1"]
        params: list[Any] = []
        if name is not None:
            conds.append("name = ?")
            params.append(name)
        if key_prefix:
            # A range on (name, key): no LIKE escaping.
            conds.append("key >= ? AND key < ?")
            params += [key_prefix, key_prefix + "\U0010ffff"]
        if modified_from is not None:
            conds.append("last_modified >= ?")
            params.append(modified_from)
        if modified_to is not None:
            conds.append("last_modified < ?")
            params.append(modified_to)
        if after is not None:
            conds.append("entity_id > ?")
            params.append(after)
        rows = self._q(
            f"SELECT {ENTITY_COLUMNS} FROM entities WHERE {' AND '.join(conds)} "
            "ORDER BY entity_id LIMIT ?",
            [*params, limit],
        )
        return [EntityRow(*r) for r in rows]

    def pending_entity_ops(self, entity_ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for part in chunks(sorted(set(entity_ids)), self.d.batch):
            cond, params = self.d.in_list("entity_id", part)
            for eid, count in self._q(
                f"SELECT entity_id, COUNT(*) FROM entity_ops WHERE {cond} GROUP BY entity_id",
                params,
            ):
                found[eid] = int(count)
        return found

    def next_entity_work_at(self, names: Sequence[str]) -> float | None:
        if not names:
            return None
        cond, params = self.d.names(names)
        times = []
        # A leased entity's operations are due when the lease runs out, at the earliest.
        row = self._q(
            "SELECT MIN(CASE WHEN e.lease IS NOT NULL AND e.lease_until > o.visible_at "
            "THEN e.lease_until ELSE o.visible_at END) "
            "FROM entity_ops o JOIN entities e ON e.entity_id = o.entity_id "
            f"WHERE {cond} AND e.pause_since IS NULL AND {_MAY_RUN} AND NOT {_TYPE_PAUSED}",
            params,
        )
        if row and row[0][0] is not None:
            times.append(float(row[0][0]))
        row = self._q("SELECT MIN(pause_resume_at) FROM entities WHERE pause_resume_at IS NOT NULL")
        if row and row[0][0] is not None:
            times.append(float(row[0][0]))
        return min(times) if times else None


class SqlEntityWrites(EntityWrites):
    if TYPE_CHECKING:
        d: Dialect

        def _q(self, text: str, params: Sequence[Any] = ()) -> list[Any]: ...
        def _entity_rows(self, entity_ids: Sequence[str], lock: str) -> list[EntityRow]: ...
        def _x(self, text: str, params: Sequence[Any] = ()) -> Any: ...
        def _many(self, text: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def add_entity_ops(self, ops: Sequence[NewEntityOp], now: float) -> None:
        if not ops:
            return
        self.ensure_entities(sorted({op.entity_id for op in ops}), now)
        self._many(
            "INSERT INTO entity_ops (entity_id, kind, operation, input, caller_id, "
            "caller_execution, caller_task, lock_set, visible_at, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    op.entity_id,
                    op.kind,
                    op.operation,
                    op.input,
                    op.caller_id,
                    op.caller_execution,
                    op.caller_task,
                    op.lock_set,
                    op.visible_at,
                    now,
                )
                for op in ops
            ],
        )

    def register_entity_names(self, names: Sequence[str], now: float) -> None:
        self._many(
            "INSERT INTO names (kind, name, seen_at) VALUES ('entity', ?, ?) "
            "ON CONFLICT (kind, name) DO UPDATE SET seen_at = excluded.seen_at",
            [(n, now) for n in names],
        )

    def ensure_entities(self, entity_ids: Sequence[str], now: float) -> None:
        self._many(
            "INSERT INTO entities (entity_id, name, key, last_modified) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (entity_id) DO NOTHING",
            [(eid, *split_entity_id(eid), now) for eid in entity_ids],
        )

    def claim_entities(
        self,
        names: Sequence[str] | None,
        now: float,
        limit: int,
        lease: str,
        lease_until: float,
        exclude: Sequence[str] = (),
    ) -> list[EntityRow]:
        if names is not None and not names:
            return []
        cond, params = self.d.names(names, exclude)
        rows = self._q(
            "UPDATE entities SET lease = ?, lease_until = ? WHERE entity_id IN ("
            f"  SELECT e.entity_id FROM entities e WHERE {cond}"
            "   AND (e.lease IS NULL OR e.lease_until < ?) AND e.pause_since IS NULL"
            f"  AND NOT {_TYPE_PAUSED}"
            "   AND EXISTS (SELECT 1 FROM entity_ops o WHERE o.entity_id = e.entity_id"
            f"      AND o.visible_at <= ? AND {_MAY_RUN})"
            # Least recently run first (lease_until stays as the last lease's end):
            # entities with work take turns, none waits behind busier ones.
            f"  ORDER BY e.lease_until NULLS FIRST LIMIT ? {self.d.skip_locked}"
            f") RETURNING {ENTITY_COLUMNS}",
            [lease, lease_until, *params, now, now, limit],
        )
        return sorted((EntityRow(*r) for r in rows), key=lambda r: r.entity_id)

    def entity_ops(
        self, entity_ids: Sequence[str], now: float, limit: int
    ) -> dict[str, list[EntityOpRow]]:
        found: dict[str, list[EntityOpRow]] = {eid: [] for eid in entity_ids}
        # One subquery per entity, each reading the head of its queue from the index
        # (entity_id, id): a long queue costs a batch no more than ``limit`` rows.
        one = (
            f"SELECT * FROM (SELECT {_O_COLUMNS} FROM entity_ops o "
            "JOIN entities e ON e.entity_id = o.entity_id "
            f"WHERE o.entity_id = ? AND o.visible_at <= ? AND {_MAY_RUN} "
            "ORDER BY o.id LIMIT ?) t"
        )
        for part in chunks(sorted(set(entity_ids)), 100):
            union = " UNION ALL ".join(one for _ in part)
            params = [x for eid in part for x in (eid, now, limit)]
            for r in self._q(union, params):
                found[r[1]].append(EntityOpRow(*r))
        for ops in found.values():
            ops.sort(key=lambda op: op.id)
        return found

    def save_entities(self, items: Sequence[tuple[str, str, dict[str, Any]]]) -> list[bool]:
        saved = []
        for entity_id, lease, changes in items:
            sets, params = _sets(changes)
            rows = self._q(
                f"UPDATE entities SET {sets}lease = NULL "
                "WHERE entity_id = ? AND lease = ? RETURNING entity_id",
                [*params, entity_id, lease],
            )
            saved.append(bool(rows))
        return saved

    def update_entities(self, entity_ids: Sequence[str], changes: dict[str, Any]) -> None:
        sets, params = _sets(changes)
        sets = sets.rstrip(", ")
        for part in chunks(sorted(set(entity_ids)), self.d.batch):
            cond, more = self.d.in_list("entity_id", part)
            self._x(f"UPDATE entities SET {sets} WHERE {cond}", [*params, *more])

    def lock_entity_rows(self, entity_ids: Sequence[str]) -> list[EntityRow]:
        return self._entity_rows(entity_ids, self.d.for_update)

    def delete_entity_ops(self, op_ids: Sequence[int]) -> None:
        for part in chunks(list(op_ids), self.d.batch):
            cond, params = self.d.in_list("id", part)
            self._x(f"DELETE FROM entity_ops WHERE {cond}", params)

    def release_entity_locks(self, instance_ids: Sequence[str]) -> list[str]:
        released: list[str] = []
        for part in chunks(sorted(set(instance_ids)), self.d.batch):
            cond, params = self.d.in_list("locked_by", part)
            released += [
                r[0]
                for r in self._q(
                    f"UPDATE entities SET locked_by = NULL WHERE {cond} RETURNING entity_id",
                    params,
                )
            ]
        return sorted(released)

    def due_entity_resumes(self, now: float, limit: int) -> list[str]:
        rows = self._q(
            "SELECT entity_id FROM entities WHERE pause_resume_at IS NOT NULL "
            "AND pause_resume_at <= ? ORDER BY pause_resume_at LIMIT ?",
            (now, limit),
        )
        return [r[0] for r in rows]

    def entity_locks(self) -> list[tuple[str, str]]:
        rows = self._q(
            "SELECT entity_id, locked_by FROM entities WHERE locked_by IS NOT NULL "
            "ORDER BY entity_id"
        )
        return [(r[0], r[1]) for r in rows]

    def delete_empty_entities(self) -> int:
        rows = self._q(
            "DELETE FROM entities WHERE state IS NULL AND locked_by IS NULL "
            "AND pause_since IS NULL AND lease IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM entity_ops o WHERE o.entity_id = entities.entity_id) "
            "RETURNING entity_id"
        )
        return len(rows)


def _sets(changes: dict[str, Any]) -> tuple[str, list[Any]]:
    """``col = ?, `` for each change (whitelisted names only), and the values."""
    unknown = set(changes) - ENTITY_FIELDS
    if unknown:
        raise ValueError(f"not entity columns: {sorted(unknown)}")
    return "".join(f"{c} = ?, " for c in changes), list(changes.values())
