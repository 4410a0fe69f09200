"""The tracking outbox, as the store offers it: records written with the change they
record, sequenced and emitted by one drainer per deployment (see :mod:`tenuto.outbox`).

Kept apart from :mod:`.base` (which mixes these into :class:`~.base.Reader` and
:class:`~.base.Tx`): one concept, one module.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The name of the drainer's lease row.
TRACKING = "tracking"


@dataclass(slots=True)
class TrackingRecord:
    """One tracking record: ``event`` of ``instance_id`` (or, for a standing pause, of
    the orchestrator or activity name) at ``ts``, with its other ``fields``. ``seq``:
    its place in the emission order, once the drainer has given it one."""

    event: str
    instance_id: str
    ts: float
    fields: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None


@dataclass(slots=True)
class DrainState:
    """The drainer's lease and progress: the last sequence number it gave a record
    (``sequenced``) and the last it emitted (``emitted``); records in between were
    emitted by a drainer that died before saying so, or not at all."""

    holder: str | None
    lease_until: float | None
    sequenced: int
    emitted: int
    #: The oldest sequence number still kept (``None``: none is).
    first: int | None = None
    #: Records written and not yet sequenced.
    pending: int = 0


class OutboxReads(abc.ABC):
    """Reads of the outbox."""

    @abc.abstractmethod
    def tracking_after(self, after: int, limit: int) -> list[TrackingRecord]:
        """Sequenced records with ``seq > after``, in order (at most ``limit``)."""

    @abc.abstractmethod
    def tracking_counts(self) -> list[tuple[str, str, int]]:
        """``(event, source, count)``: how many records were emitted, per event and
        pause source (``""`` for records without one)."""

    @abc.abstractmethod
    def drain_state(self, count: bool = True) -> DrainState:
        """The drainer's lease and progress, and what the outbox holds (without
        ``count``, ``pending`` is only 1 if any record waits, else 0: a cheaper read)."""


class OutboxWrites(abc.ABC):
    """Writes of the outbox. Records made with :meth:`track` are written by the store
    just before the transaction commits (:meth:`flush`), in one statement."""

    tracked: list[TrackingRecord]

    def track(self, record: TrackingRecord) -> None:
        """Write ``record`` to the outbox with this transaction."""
        self.tracked.append(record)

    def flush(self) -> None:
        """Write the records tracked so far (the store calls this before committing)."""
        if self.tracked:
            self.write_tracking(self.tracked)
            self.tracked = []

    @abc.abstractmethod
    def write_tracking(self, records: Sequence[TrackingRecord]) -> None:
        """Insert records into the outbox, unsequenced."""

    @abc.abstractmethod
    def lease_drain(self, holder: str, now: float, until: float) -> DrainState | None:
        """Take or renew the drainer's lease for ``holder`` until ``until`` (if it is
        free, expired or ``holder``'s); ``None`` if another holds it."""

    @abc.abstractmethod
    def sequence_tracking(self, after: int, limit: int) -> list[TrackingRecord]:
        """Give the oldest unsequenced records (at most ``limit``) the numbers after
        ``after``, in the order they were written; returns them (the lease holder
        only)."""

    @abc.abstractmethod
    def ack_tracking(
        self,
        holder: str,
        emitted: int,
        counts: Mapping[tuple[str, str], int],
        trim_to: int,
        trim_before: float,
    ) -> bool:
        """Record that ``holder`` emitted every record up to ``emitted``, add ``counts``
        to the emitted counts, and delete emitted records up to ``trim_to``, or older
        than ``trim_before`` (among the oldest few thousand: a bounded cost each time).
        ``False`` (nothing changed) if ``holder`` lost the lease."""

    @abc.abstractmethod
    def release_drain(self, holder: str) -> None:
        """Give up the lease (another process may take it at once)."""
