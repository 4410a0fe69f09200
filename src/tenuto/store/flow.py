"""The part of the store seam for schedules and flow-control limits.

:class:`~tenuto.store.base.Reader` and :class:`~tenuto.store.base.Tx` include these
methods; they are kept here, apart, because they concern one feature. Limits themselves
are enforced by the claims (``Tx.claim_activities`` and ``Tx.claim_steps``): a claim
never takes more than a limit allows, counted in the database, so the limit holds across
every worker process.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..status import Status

#: Schedule columns an update may set.
SCHEDULE_FIELDS = frozenset(
    {
        "orchestrator",
        "input",
        "spec",
        "next_fire",
        "last_run",
        "buffered",
        "watch_run",
        "updated_at",
    }
)


@dataclass(slots=True)
class ScheduleRow:
    """One row of the schedules table (``spec`` and ``input`` hold JSON text)."""

    schedule_id: str
    orchestrator: str
    input: str | None
    spec: str
    next_fire: float | None
    last_run: str | None
    buffered: float | None
    watch_run: str | None
    created_at: float
    updated_at: float


@dataclass(slots=True)
class LimitRow:
    """A flow-control limit of an activity or orchestrator (``kind``). For an
    orchestrator, ``max_concurrent`` is the most instances RUNNING at once."""

    kind: str
    name: str
    max_concurrent: int | None
    per_second: float | None
    reason: str | None
    by: str | None
    since: float
    #: ``"client"`` (set by a call) or ``"code"`` (a default declared in an app).
    source: str


class FlowReader(abc.ABC):
    """Reads of schedules and limits."""

    @abc.abstractmethod
    def get_schedule(self, schedule_id: str) -> ScheduleRow | None: ...

    @abc.abstractmethod
    def list_schedules(
        self, orchestrator: str | None = None, id_prefix: str | None = None
    ) -> list[ScheduleRow]:
        """Schedules (of ``orchestrator``, with ids starting ``id_prefix``), by id."""

    @abc.abstractmethod
    def flow_limits(self, kind: str | None = None) -> list[LimitRow]:
        """Limits (of ``kind``), by kind and name."""

    @abc.abstractmethod
    def schedule_work(self, now: float) -> bool:
        """Whether :meth:`FlowTx.due_schedules` or :meth:`FlowTx.finished_watched_runs`
        may find something at ``now`` (a read: the write transaction only when so)."""


class FlowTx(FlowReader):
    """Writes of schedules and limits, inside a transaction."""

    @abc.abstractmethod
    def lock_schedules(self, ids: Sequence[str]) -> list[ScheduleRow]:
        """Read schedules for update (blocking concurrent writers of those rows)."""

    @abc.abstractmethod
    def due_schedules(self, now: float, limit: int) -> list[ScheduleRow]:
        """Up to ``limit`` schedules with a fire time due (``next_fire <= now``) or a
        buffered run, that no standing pause of kind ``"schedule"`` holds, locked for
        update; rows another transaction holds are skipped, not waited for (two workers
        never fire the same schedule at once)."""

    @abc.abstractmethod
    def finished_watched_runs(self) -> list[tuple[str, str, Status | None]]:
        """``(schedule_id, run_id, status)`` of schedules whose watched run has finished
        (``status`` ``None``: the run is gone)."""

    @abc.abstractmethod
    def insert_schedule(self, row: ScheduleRow) -> bool:
        """Insert a schedule; ``False`` (nothing written) if its id is taken."""

    @abc.abstractmethod
    def update_schedule(self, schedule_id: str, changes: dict[str, Any]) -> None:
        """Set columns of a schedule (names from :data:`SCHEDULE_FIELDS`)."""

    @abc.abstractmethod
    def delete_schedule(self, schedule_id: str) -> bool:
        """Delete a schedule; ``False`` if there was none."""

    @abc.abstractmethod
    def put_limit(self, row: LimitRow, *, keep_client: bool = False) -> bool:
        """Set a limit (replacing the one of the same kind and name). ``keep_client``:
        leave a limit set by a client (``source == "client"``) as it is. Whether it was
        written."""

    @abc.abstractmethod
    def delete_limit(self, kind: str, name: str) -> LimitRow | None:
        """Remove a limit; returns it, or ``None`` if there was none."""

    @abc.abstractmethod
    def set_priority(self, instance_ids: Sequence[str], priority: int) -> None:
        """Set the priority of instances (the order a limited orchestrator's PENDING
        instances start in: highest first, then oldest first)."""
