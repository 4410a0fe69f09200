"""The outbox's SQL, shared by the SQLite and PostgreSQL stores (mixed into
:class:`~._sql.SqlReader` and :class:`~._sql.SqlTx`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .outbox import TRACKING, DrainState, OutboxReads, OutboxWrites, TrackingRecord

#: Most records one acknowledgement trims (more than a batch: trimming keeps up).
_TRIM = 2000


def record_data(record: TrackingRecord) -> str:
    """The JSON text stored for a record's fields."""
    return json.dumps(record.fields, separators=(",", ":"), default=str)


def _record(row: Sequence[Any]) -> TrackingRecord:
    seq, ts, event, instance_id, data = row
    return TrackingRecord(event, instance_id, ts, json.loads(data), seq)


class SqlOutboxReads(OutboxReads):
    if TYPE_CHECKING:  # provided by SqlReader

        def _q(self, text: str, params: Sequence[Any] = ()) -> list[Any]: ...

    def tracking_after(self, after: int, limit: int) -> list[TrackingRecord]:
        rows = self._q(
            "SELECT seq, ts, event, instance_id, data FROM outbox WHERE seq > ? ORDER BY seq"
            " LIMIT ?",
            (after, limit),
        )
        return [_record(r) for r in rows]

    def tracking_counts(self) -> list[tuple[str, str, int]]:
        rows = self._q("SELECT event, source, count FROM outbox_counts ORDER BY event, source")
        return [(r[0], r[1], int(r[2])) for r in rows]

    def drain_state(self, count: bool = True) -> DrainState:
        holder, until, sequenced, emitted = self._q(
            "SELECT holder, lease_until, sequenced, emitted FROM outbox_drain WHERE name = ?",
            (TRACKING,),
        )[0]
        # Both answered from the partial indexes on seq and on the unsequenced rows.
        first = self._q("SELECT MIN(seq) FROM outbox WHERE seq IS NOT NULL")[0][0]
        pending = self._q(
            "SELECT COUNT(*) FROM outbox WHERE seq IS NULL"
            if count
            else "SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE seq IS NULL LIMIT 1) AS x"
        )[0][0]
        return DrainState(holder, until, int(sequenced), int(emitted), first, int(pending))


class SqlOutboxWrites(OutboxWrites):
    if TYPE_CHECKING:  # provided by SqlTx (defining them here would hide those)

        def _q(self, text: str, params: Sequence[Any] = ()) -> list[Any]: ...
        def _x(self, text: str, params: Sequence[Any] = ()) -> Any: ...
        def _many(self, text: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def write_tracking(self, records: Sequence[TrackingRecord]) -> None:
        self._many(
            "INSERT INTO outbox (ts, event, instance_id, data) VALUES (?, ?, ?, ?)",
            [(r.ts, r.event, r.instance_id, record_data(r)) for r in records],
        )

    def lease_drain(self, holder: str, now: float, until: float) -> DrainState | None:
        rows = self._q(
            "UPDATE outbox_drain SET holder = ?, lease_until = ? WHERE name = ?"
            " AND (holder IS NULL OR holder = ? OR lease_until < ?)"
            " RETURNING sequenced, emitted",
            (holder, until, TRACKING, holder, now),
        )
        if not rows:
            return None
        return DrainState(holder, until, int(rows[0][0]), int(rows[0][1]))

    def sequence_tracking(self, after: int, limit: int) -> list[TrackingRecord]:
        # One statement: the lease holder's write transaction stays short (on SQLite it
        # holds the write lock every step commit waits for).
        rows = self._q(
            "UPDATE outbox SET seq = x.n + ? FROM (SELECT id AS xid,"
            " row_number() OVER (ORDER BY id) AS n FROM (SELECT id FROM outbox"
            " WHERE seq IS NULL ORDER BY id LIMIT ?) AS p) AS x WHERE outbox.id = x.xid"
            " RETURNING seq, ts, event, instance_id, data",
            (after, limit),
        )
        if not rows:
            return []
        self._x(
            "UPDATE outbox_drain SET sequenced = ? WHERE name = ?", (after + len(rows), TRACKING)
        )
        return sorted((_record(r) for r in rows), key=lambda r: r.seq or 0)

    def ack_tracking(
        self,
        holder: str,
        emitted: int,
        counts: Mapping[tuple[str, str], int],
        trim_to: int,
        trim_before: float,
    ) -> bool:
        if not self._q(
            "UPDATE outbox_drain SET emitted = ? WHERE name = ? AND holder = ? RETURNING 1",
            (emitted, TRACKING, holder),
        ):
            return False
        if counts:
            self._many(
                "INSERT INTO outbox_counts (event, source, count) VALUES (?, ?, ?)"
                " ON CONFLICT (event, source) DO UPDATE"
                " SET count = outbox_counts.count + excluded.count",
                [(event, source, n) for (event, source), n in sorted(counts.items())],
            )
        # Among the oldest records only (read from the index on seq): each trim costs
        # the same however many records are kept.
        self._x(
            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE seq IS NOT NULL"
            " ORDER BY seq LIMIT ?) AND seq <= ? AND (seq <= ? OR ts < ?)",
            (_TRIM, emitted, trim_to, trim_before),
        )
        return True

    def release_drain(self, holder: str) -> None:
        self._x(
            "UPDATE outbox_drain SET holder = NULL, lease_until = NULL"
            " WHERE name = ? AND holder = ?",
            (TRACKING, holder),
        )
