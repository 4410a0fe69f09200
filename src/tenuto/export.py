"""History export and import: instances as JSON Lines (or Parquet), and back.

One line per instance, a JSON object with everything stored about it::

    {"format": "tenuto-export/1", "instance_id": "...", "name": "...", "status": "COMPLETED",
     "execution_id": "...", "generation": 0, "input": ..., "output": ..., "failure": ...,
     "custom_status": ..., "created_at": 1732870000.1, ..., "pause": null | {...},
     "version": null, "tags": null, "parent": null | {...}, "trace_parent": null,
     "history": [{"type": "ExecutionStarted", "ts": ..., "data": {...}}, ...],
     "inbox": [...], "activities": [...]}

JSON values (input, output, event data) are written as the JSON text the store holds,
unchanged. Times are epoch seconds (UTC). ``inbox`` and ``activities`` hold the pending
work of an unfinished instance (empty for a finished one).

Import (:func:`import_records`) keeps ids, histories and pauses. An unfinished instance
comes in PAUSED, so that nothing of it runs in two stores at once: one PAUSED in the
export keeps its pause; a PENDING or RUNNING one gets a pause of its own (source
``"import"``), to be resumed once the store it came from is stopped. Its queued
activities come in held; one that was running in the old store runs again after resume
(activities run at least once).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import IO, Any

from ._control import _suspended
from ._json import dumps
from .errors import InstanceExists, ValidationError
from .history import Event
from .status import Status
from .store.base import (
    ActivityRow,
    HistoryRow,
    InstanceRow,
    NewActivity,
    NewMessage,
    Reader,
    Selection,
    Store,
    Tx,
)

FORMAT = "tenuto-export/1"
#: ``pause.source`` of an instance that was live when exported and came in paused.
IMPORT = "import"
#: Instances read (export) or written (import) per database round.
PAGE = 500

_TIMES = ("created_at", "updated_at", "started_at", "completed_at", "start_at")
_PLAIN = ("instance_id", "name", "execution_id", "generation", *_TIMES, "version")
_VALUES = ("input", "output", "failure", "custom_status", "tags")


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """Which instances to export (all given conditions hold)."""

    statuses: tuple[Status, ...] = ()
    name: str | None = None
    since: float | None = None
    until: float | None = None

    def store_filter(self) -> Selection:
        return Selection(
            statuses=self.statuses,
            name=self.name,
            created_from=self.since,
            created_to=self.until,
        )


def _raw(text: str | None) -> str:
    """Stored JSON text as a JSON value in the line (``null`` for none)."""
    return "null" if text is None else text


def _event_json(event: Event) -> str:
    data = event.raw if event.raw is not None else dumps(event.data)
    return f'{{"type":{json.dumps(event.type)},"ts":{event.ts!r},"data":{data}}}'


def line_of(
    row: InstanceRow,
    history: Sequence[Event],
    inbox: Sequence[Any] = (),
    activities: Sequence[ActivityRow] = (),
) -> str:
    """One instance as one JSON line (no newline), stored values copied as they are."""
    parts = [f'"format":"{FORMAT}"', f'"status":"{row.status.value}"']
    parts += [f'"{key}":{json.dumps(getattr(row, key))}' for key in _PLAIN]
    parts += [f'"{key}":{_raw(getattr(row, key))}' for key in _VALUES]
    pause = None
    if row.status is Status.PAUSED:
        pause = {
            "reason": row.pause_reason,
            "by": row.pause_by,
            "since": row.pause_since,
            "resume_at": row.pause_resume_at,
            "source": row.pause_source,
        }
    parent = None
    if row.parent_instance_id is not None:
        parent = {
            "instance_id": row.parent_instance_id,
            "execution_id": row.parent_execution_id,
            "task_id": row.parent_task_id,
        }
    parts.append(f'"pause":{json.dumps(pause)}')
    parts.append(f'"parent":{json.dumps(parent)}')
    parts.append(f'"trace_parent":{json.dumps(row.trace_parent)}')
    parts.append(f'"history":[{",".join(_event_json(e) for e in history)}]')
    messages = [
        f'{{"execution_id":{json.dumps(m.execution_id)},"visible_at":{m.visible_at!r},'
        f'"event":{_event_json(m.event)}}}'
        for m in inbox
    ]
    parts.append(f'"inbox":[{",".join(messages)}]')
    queued = [
        json.dumps(
            {
                "execution_id": a.execution_id,
                "task_id": a.task_id,
                "name": a.name,
                "input": a.input,
                "retry": a.retry,
                "attempt": a.attempt,
                "created_at": a.created_at,
            }
        )
        for a in activities
    ]
    parts.append(f'"activities":[{",".join(queued)}]')
    return "{" + ",".join(parts) + "}"


def lines(reader: Reader, ids: Sequence[str]) -> list[str]:
    """The export lines of the instances ``ids`` (those that exist), in the order given."""
    rows = {r.instance_id: r for r in reader.query(Selection(ids=tuple(ids)), len(ids), None)}
    present = [i for i in ids if i in rows]
    if not present:
        return []
    histories = reader.histories(present)
    live = [i for i in present if not rows[i].status.is_terminal]
    inbox = reader.inbox_of(live) if live else {}
    activities: dict[str, list[ActivityRow]] = {}
    for a in reader.activities_of(live) if live else []:
        activities.setdefault(a.instance_id, []).append(a)
    return [
        line_of(rows[i], histories[i], inbox.get(i, ()), activities.get(i, ())) for i in present
    ]


def export_lines(store: Store, flt: ExportFilter, page: int = PAGE) -> Iterator[str]:
    """Every matching instance's line, in id order, a page of instances per read (the
    store is never held for long: a page is one short read)."""
    after: str | None = None
    query = flt.store_filter()
    while True:
        ids = store.read(partial(_page, query, after, page))
        if not ids:
            return
        yield from store.read(partial(lines, ids=ids))
        after = ids[-1]


def _page(query: Selection, after: str | None, page: int, reader: Reader) -> list[str]:
    return reader.page_ids(query, after, page)


def write_jsonl(out: IO[str], items: Iterable[str]) -> int:
    """Write lines; returns how many."""
    count = 0
    for line in items:
        out.write(line)
        out.write("\n")
        count += 1
    return count


# -- Parquet (pyarrow, when installed) ----------------------------------------------------


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ImportError(
            "the Parquet format needs pyarrow: pip install 'tenuto[parquet]' (or use the "
            "default JSON Lines format)"
        ) from None
    return pyarrow


#: Parquet columns: the scalar fields as columns, the rest as JSON text.
_PARQUET_TEXT = ("status", "instance_id", "name", "execution_id", "version")
_PARQUET_JSON = ("input", "output", "failure", "custom_status", "tags", "pause", "parent")
_PARQUET_LISTS = ("history", "inbox", "activities")


def write_parquet(path: str, items: Iterable[str], batch: int = 5000) -> int:
    """Write the lines as a Parquet file: one row per instance; scalar fields as columns,
    JSON values (input, output, history, ...) as JSON text columns."""
    pa = _pyarrow()
    schema = pa.schema(
        [(c, pa.string()) for c in _PARQUET_TEXT]
        + [("generation", pa.int64())]
        + [(c, pa.float64()) for c in _TIMES]
        + [(c, pa.string()) for c in (*_PARQUET_JSON, "trace_parent", *_PARQUET_LISTS)]
    )
    count = 0
    with pa.parquet.ParquetWriter(path, schema) as writer:
        rows: list[dict[str, Any]] = []
        for line in items:
            rows.append(_flat(json.loads(line)))
            if len(rows) >= batch:
                writer.write_table(pa.Table.from_pylist(rows, schema))
                count += len(rows)
                rows = []
        if rows or not count:
            writer.write_table(pa.Table.from_pylist(rows, schema))
            count += len(rows)
    return count


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: record[k] for k in (*_PARQUET_TEXT, "generation", *_TIMES, "trace_parent")}
    for key in (*_PARQUET_JSON, *_PARQUET_LISTS):
        out[key] = None if record[key] is None else json.dumps(record[key])
    return out


def read_parquet(path: str) -> Iterator[dict[str, Any]]:
    pa = _pyarrow()
    for batch in pa.parquet.ParquetFile(path).iter_batches():
        for row in batch.to_pylist():
            for key in (*_PARQUET_JSON, *_PARQUET_LISTS):
                row[key] = None if row[key] is None else json.loads(row[key])
            row["format"] = FORMAT
            yield row


def read_jsonl(path: str) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"{path}, line {number}: not a JSON object ({exc})") from None
            if not isinstance(record, dict) or record.get("format") != FORMAT:
                raise ValidationError(
                    f"{path}, line {number}: not a tenuto export line (expected "
                    f'"format": "{FORMAT}"; write one with tenuto export)'
                )
            yield record


def read_records(path: str) -> Iterator[dict[str, Any]]:
    """The records of an export file, JSON Lines or Parquet (told by the name: ``.parquet``)."""
    if not os.path.exists(path):
        raise ValidationError(f"no such export file: {path}")
    if path.endswith(".parquet"):
        return read_parquet(path)
    return read_jsonl(path)


# -- import ---------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return None if value is None else dumps(value)


def _event(item: dict[str, Any]) -> Event:
    return Event(item["type"], float(item["ts"]), item["data"], dumps(item["data"]))


def instance_of(record: dict[str, Any], now: float) -> tuple[InstanceRow, list[Event]]:
    """The row to insert for an export record, and the events to append to its history
    (its own, and for a live instance paused on the way in, that pause)."""
    try:
        status = Status(record["status"])
        row = InstanceRow(
            instance_id=str(record["instance_id"]),
            name=str(record["name"]),
            status=status,
            execution_id=str(record["execution_id"]),
            generation=int(record["generation"]),
            **{k: (None if record[k] is None else float(record[k])) for k in _TIMES},  # type: ignore[arg-type]
            input=_text(record["input"]),
            output=_text(record["output"]),
            failure=_text(record["failure"]),
            custom_status=_text(record["custom_status"]),
            version=record["version"],
            tags=_text(record["tags"]),
            trace_parent=record.get("trace_parent"),
        )
        parent = record["parent"]
        if parent:
            row.parent_instance_id = parent["instance_id"]
            row.parent_execution_id = parent["execution_id"]
            row.parent_task_id = parent["task_id"]
        events = [_event(e) for e in record["history"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(
            f"instance {record.get('instance_id')!r}: not a complete export record ({exc!r})"
        ) from None
    pause = record["pause"] or {}
    if status is Status.PAUSED:
        row.pause_reason, row.pause_by = pause.get("reason"), pause.get("by")
        row.pause_since, row.pause_resume_at = pause.get("since"), pause.get("resume_at")
        row.pause_source = pause.get("source") or "client"
    elif not status.is_terminal:
        # Live in the old store: paused here, so that it runs in one store at a time.
        reason = f"imported while {status.value}: resume once the store it came from is stopped"
        row.status = Status.PAUSED
        row.pause_reason, row.pause_by, row.pause_source = reason, "import", IMPORT
        row.pause_since = now
        events.append(_suspended(reason, "import", IMPORT, None, now))
    row.history_len = len(events)
    return row, events


def _insert(tx: Tx, records: Sequence[dict[str, Any]], now: float, skip_existing: bool) -> int:
    built = [instance_of(r, now) for r in records]
    inserted = tx.insert_instances([row for row, _ in built])
    count = 0
    for (row, events), record, ok in zip(built, records, inserted, strict=True):
        if not ok:
            if skip_existing:
                continue
            raise InstanceExists(row.instance_id)
        count += 1
        tx.append_history(HistoryRow(row.instance_id, seq, e) for seq, e in enumerate(events))
        tx.add_messages(
            NewMessage(
                row.instance_id, m["execution_id"], _event(m["event"]), float(m["visible_at"])
            )
            for m in record.get("inbox") or ()
        )
        tx.insert_activities(
            NewActivity(
                row.instance_id,
                a["execution_id"],
                int(a["task_id"]),
                a["name"],
                a["input"],
                a["retry"],
                now,
                held=True,  # every imported live instance is PAUSED
            )
            for a in record.get("activities") or ()
        )
    return count


def import_records(
    store: Store,
    records: Iterable[dict[str, Any]],
    *,
    now: float,
    skip_existing: bool = False,
    page: int = PAGE,
    on_page: Callable[[int], None] | None = None,
) -> int:
    """Insert exported instances, ``page`` per transaction; returns how many were added.

    An id that is taken raises :class:`~tenuto.InstanceExists` (that page is not
    written), unless ``skip_existing``: then the stored instance is kept and the record
    skipped. Callers that want all or nothing check the ids first
    (:func:`taken_ids`)."""
    total = 0
    chunk: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal total, chunk
        if chunk:
            part = chunk
            total += store.run(lambda tx: _insert(tx, part, now, skip_existing))
            chunk = []
            if on_page is not None:
                on_page(total)

    for record in records:
        chunk.append(record)
        if len(chunk) >= page:
            flush()
    flush()
    return total


def taken_ids(store: Store, records: Iterable[dict[str, Any]], page: int = PAGE) -> list[str]:
    """The ids among ``records`` that the store holds already (a read, page by page)."""
    taken: list[str] = []
    ids: list[str] = []

    def check() -> None:
        nonlocal ids
        if ids:
            part = ids
            taken.extend(sorted(store.read(lambda r: r.statuses(part))))
            ids = []

    for record in records:
        ids.append(str(record.get("instance_id")))
        if len(ids) >= page:
            check()
    check()
    return taken


__all__ = [
    "FORMAT",
    "IMPORT",
    "ExportFilter",
    "export_lines",
    "import_records",
    "line_of",
    "lines",
    "read_records",
    "taken_ids",
    "write_jsonl",
    "write_parquet",
]
