"""The entity half of the store seam: the rows of durable entities and the operations
queued for them, and the reads and writes the engine makes of them (see
:mod:`tenuto._entities`). :class:`~tenuto.store.base.Reader` and
:class:`~tenuto.store.base.Tx` include these.

An entity is one row, ``@name@key``; operations wait in a queue, applied in id order by
one worker at a time, which holds a lease on the entity while it runs a batch.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Entity columns an engine update may set.
ENTITY_FIELDS = frozenset(
    {
        "state",
        "locked_by",
        "last_modified",
        "pause_reason",
        "pause_by",
        "pause_since",
        "pause_resume_at",
        "lease",
        "lease_until",
    }
)


@dataclass(slots=True)
class EntityRow:
    """One row of the entities table (``state`` is JSON text, ``None``: no state)."""

    entity_id: str
    name: str
    key: str
    state: str | None
    locked_by: str | None
    last_modified: float
    pause_reason: str | None = None
    pause_by: str | None = None
    pause_since: float | None = None
    pause_resume_at: float | None = None
    lease: str | None = None
    lease_until: float | None = None


@dataclass(slots=True)
class EntityOpRow:
    """An operation queued for an entity. ``kind``: ``call`` (the caller waits for the
    result), ``signal`` (one-way), ``lock`` / ``unlock`` (critical sections)."""

    id: int
    entity_id: str
    kind: str
    operation: str | None
    input: str | None
    caller_id: str | None
    caller_execution: str | None
    caller_task: int | None
    #: For ``lock``: the entities still to lock after this one (JSON list of ids).
    lock_set: str | None
    visible_at: float
    created_at: float


@dataclass(slots=True)
class NewEntityOp:
    entity_id: str
    kind: str
    operation: str | None
    input: str | None
    visible_at: float
    caller_id: str | None = None
    caller_execution: str | None = None
    caller_task: int | None = None
    lock_set: str | None = None


class EntityReads(abc.ABC):
    """Reads of entities."""

    @abc.abstractmethod
    def get_entities(self, entity_ids: Sequence[str]) -> list[EntityRow]:
        """The rows of those of ``entity_ids`` that exist, in id order."""

    @abc.abstractmethod
    def query_entities(
        self,
        name: str | None,
        key_prefix: str | None,
        modified_from: float | None,
        modified_to: float | None,
        limit: int,
        after: str | None,
    ) -> list[EntityRow]:
        """Entities (of ``name``, keys starting with ``key_prefix``, last modified in
        ``[modified_from, modified_to)``) in id order, after the id ``after``."""

    @abc.abstractmethod
    def pending_entity_ops(self, entity_ids: Sequence[str]) -> dict[str, int]:
        """How many operations wait for each of ``entity_ids`` (those with none are
        left out)."""

    @abc.abstractmethod
    def next_entity_work_at(self, names: Sequence[str]) -> float | None:
        """The earliest time an operation for an entity of ``names`` is (or was) due,
        or a paused entity resumes by itself (``None``: nothing)."""


class EntityWrites(abc.ABC):
    """Writes of entities, inside a transaction."""

    @abc.abstractmethod
    def add_entity_ops(self, ops: Sequence[NewEntityOp], now: float) -> None:
        """Queue operations, creating the entities they go to that do not exist yet."""

    @abc.abstractmethod
    def register_entity_names(self, names: Sequence[str], now: float) -> None:
        """Record the entity names a worker serves (see ``known_names("entity")``)."""

    @abc.abstractmethod
    def ensure_entities(self, entity_ids: Sequence[str], now: float) -> None:
        """Create those of the entities that do not exist yet (no state)."""

    @abc.abstractmethod
    def claim_entities(
        self,
        names: Sequence[str] | None,
        now: float,
        limit: int,
        lease: str,
        lease_until: float,
        exclude: Sequence[str] = (),
    ) -> list[EntityRow]:
        """Lease up to ``limit`` entities of ``names`` (``None``: any name but those of
        ``exclude``) that are not leased, not paused
        (neither themselves nor by a standing pause of their name) and have an operation
        they may run now: one due, and while locked, one from the lock holder."""

    @abc.abstractmethod
    def entity_ops(
        self, entity_ids: Sequence[str], now: float, limit: int
    ) -> dict[str, list[EntityOpRow]]:
        """The operations due for each entity, oldest first, up to ``limit`` each."""

    @abc.abstractmethod
    def save_entities(self, items: Sequence[tuple[str, str, dict[str, Any]]]) -> list[bool]:
        """For each ``(entity_id, lease, changes)``: set the columns (from
        :data:`ENTITY_FIELDS`) and free the lease, if the entity is still leased with
        ``lease``. Returns which were set."""

    @abc.abstractmethod
    def update_entities(self, entity_ids: Sequence[str], changes: dict[str, Any]) -> None:
        """Set the same columns of several entities."""

    @abc.abstractmethod
    def lock_entity_rows(self, entity_ids: Sequence[str]) -> list[EntityRow]:
        """Read entities for update, in id order."""

    @abc.abstractmethod
    def delete_entity_ops(self, op_ids: Sequence[int]) -> None:
        """Delete operations that were applied."""

    @abc.abstractmethod
    def release_entity_locks(self, instance_ids: Sequence[str]) -> list[str]:
        """Unlock the entities these orchestrations hold; returns the entities unlocked."""

    @abc.abstractmethod
    def due_entity_resumes(self, now: float, limit: int) -> list[str]:
        """Ids of paused entities whose scheduled resume time has come."""

    @abc.abstractmethod
    def entity_locks(self) -> list[tuple[str, str]]:
        """``(entity_id, locked_by)`` of every locked entity."""

    @abc.abstractmethod
    def delete_empty_entities(self) -> int:
        """Delete entities without state, lock, pause, lease or queued operation;
        returns how many."""


def split_entity_id(entity_id: str) -> tuple[str, str]:
    """``(name, key)`` of an entity id ``@name@key`` (checked by the caller)."""
    name, _, key = entity_id[1:].partition("@")
    return name, key
