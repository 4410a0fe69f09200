"""Reading the tracking records of the outbox in order, for operators and log shippers
(``Client.events``, ``GET /api/events``, ``tenuto events``).

A record is readable once the drainer has numbered it (``seq``, see
:mod:`tenuto.outbox`), and until it is trimmed (the drainer keeps emitted records an
hour, and at most 100,000 of them, by default). A reader passes the ``seq`` of the last
record it read as ``after`` and gets the following ones; ``missed`` says how many were
trimmed before it could read them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import ValidationError
from .store.base import Store
from .store.outbox import TrackingRecord

#: The longest a read waits for a record to come (seconds).
MAX_WAIT = 60.0
#: The most records one read returns.
MAX_EVENTS = 1000
#: The largest sequence number (a signed 64-bit integer in the database).
MAX_SEQ = 2**63 - 1
#: How often a waiting read looks again.
_POLL = 0.2


@dataclass(frozen=True, slots=True)
class TrackedEvent:
    """One tracking record: ``event`` (``started``, ``paused``, ...) of ``instance_id``
    (of an orchestrator or activity name, for a standing pause), made ``at``, with its
    other ``fields`` (``reason``, ``by``, ``source``, ...)."""

    seq: int
    at: datetime
    event: str
    instance_id: str
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "event": self.event,
            "instance_id": self.instance_id,
            **self.fields,
        }

    @classmethod
    def of(cls, r: TrackingRecord) -> TrackedEvent:
        assert r.seq is not None
        return cls(r.seq, datetime.fromtimestamp(r.ts, UTC), r.event, r.instance_id, r.fields)


@dataclass(frozen=True, slots=True)
class EventsPage:
    """Records after a cursor, in order. ``next_cursor``: pass it as ``after`` to read
    on (the last record's ``seq``, or the cursor given if there were none);
    ``missed``: records trimmed before this read could see them (a gap before the
    first of ``items``)."""

    items: list[TrackedEvent]
    next_cursor: int
    missed: int = 0


def check(after: int, limit: int, wait: float) -> None:
    """Refuse values a read cannot take, saying which."""
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= MAX_SEQ:
        raise ValidationError(
            f"after must be a record's seq (an integer from 0 to {MAX_SEQ}), not {after!r}"
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_EVENTS:
        raise ValidationError(f"limit must be an integer from 1 to {MAX_EVENTS}, not {limit!r}")
    if not 0 <= wait <= MAX_WAIT:
        raise ValidationError(f"wait must be from 0 to {MAX_WAIT:g} seconds, not {wait!r}")


def read(store: Store, after: int, limit: int, wait: float) -> EventsPage:
    """The records after ``after`` (waiting up to ``wait`` seconds for one to come)."""
    check(after, limit, wait)
    deadline = time.monotonic() + wait
    while True:
        records = store.read(lambda r: r.tracking_after(after, limit))
        if records or time.monotonic() >= deadline:
            break
        time.sleep(min(_POLL, max(deadline - time.monotonic(), 0)))
    missed = 0
    if not records or records[0].seq != after + 1:
        state = store.read(lambda r: r.drain_state())
        oldest = state.first if state.first is not None else state.sequenced + 1
        missed = max(0, oldest - 1 - after)
    items = [TrackedEvent.of(r) for r in records]
    return EventsPage(items, items[-1].seq if items else after, missed)
