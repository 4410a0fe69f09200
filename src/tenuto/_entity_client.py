"""The entity operations of :class:`tenuto.Client` (a base class of it): signal, read,
query, clean, and the standing pause of an entity type. Pausing one entity goes through
``Client.pause`` and ``Client.resume`` with its id, ``@name@key``."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import _control, _entities
from ._checks import check_text, check_time
from ._json import dumps
from .app import App
from .clock import Clock
from .entities import EntityId, EntityState, check_operation
from .errors import InvalidCursor, UnknownEntity, ValidationError
from .status import Page
from .store.base import Reader, Store

#: The largest page of :meth:`EntityClient.query_entities`.
MAX_ENTITY_PAGE = 1000


@dataclass(frozen=True, slots=True)
class EntityCleaning:
    """What :meth:`~tenuto.Client.clean_entity_storage` did."""

    #: Entities removed: no state, no lock, no pause, no queued operation.
    removed: int
    #: Locks released whose orchestration had ended or was gone.
    released_locks: int


class EntityClient:
    """Entity operations, mixed into :class:`tenuto.Client`."""

    store: Store
    clock: Clock
    app: App | None
    check_names: bool

    def _by(self, by: str | None) -> str:
        raise NotImplementedError

    def signal_entity(
        self,
        entity_id: EntityId | str,
        operation: str,
        input: Any = None,
        *,
        signal_time: datetime | None = None,
    ) -> None:
        """Send an entity a one-way operation (now, or at ``signal_time``); the entity
        is created by its first operation. A paused entity applies it after resume."""
        target, op = EntityId.of(entity_id), check_operation(operation)
        self._check_entity_name(target.name)
        text = dumps(input, f"the input of entity operation {op!r}")
        at = check_time(signal_time, "signal_time")

        def send(tx: Any) -> None:
            now = self.clock.now()
            _entities.signal(tx, target, op, text, now if at is None else at, now)

        self.store.run(send)

    def _check_entity_name(self, name: str) -> None:
        """Refuse a name that no worker serves (with ``app``: that the app lacks), as
        ``start`` does for orchestrators, unless ``check_names=False``."""
        if self.app is not None:
            if self.app.get_entity(name) is None:
                raise UnknownEntity(name, self.app.entity_names)
            return
        if not self.check_names:
            return
        known = self.store.read(lambda r: r.known_names("entity"))
        if known and name not in known:
            raise UnknownEntity(name, known)

    def get_entity(
        self, entity_id: EntityId | str, *, include_state: bool = True
    ) -> EntityState | None:
        """An entity's state, last modification, lock holder, queued operations and
        pause; ``None`` if it does not exist."""
        target = str(EntityId.of(entity_id))

        def read(r: Reader) -> list[EntityState]:
            return _entities.read_states(r, r.get_entities([target]), include_state)

        found = self.store.read(read)
        return found[0] if found else None

    def query_entities(
        self,
        name: str | None = None,
        *,
        key_prefix: str | None = None,
        last_modified_from: datetime | None = None,
        last_modified_to: datetime | None = None,
        include_state: bool = True,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[EntityState]:
        """Entities (of ``name``, keys starting with ``key_prefix``, last modified in
        ``[last_modified_from, last_modified_to)``) in id order, a page at a time: pass
        a page's ``next_cursor`` as ``cursor`` for the next."""
        if not isinstance(limit, int) or not 1 <= limit <= MAX_ENTITY_PAGE:
            raise ValidationError(f"limit must be an int from 1 to {MAX_ENTITY_PAGE}")
        kind = None if name is None else EntityId(name, "k").name
        prefix = check_text(key_prefix, "a key prefix")
        start = check_time(last_modified_from, "last_modified_from")
        end = check_time(last_modified_to, "last_modified_to")
        after = None if cursor is None else _decode(cursor)

        def read(r: Reader) -> tuple[list[EntityState], bool]:
            rows = r.query_entities(kind, prefix, start, end, limit + 1, after)
            return _entities.read_states(r, rows[:limit], include_state), len(rows) > limit

        items, more = self.store.read(read)
        return Page(items, _encode(str(items[-1].entity_id)) if more else None)

    def clean_entity_storage(self) -> EntityCleaning:
        """Release the locks of orchestrations that ended or are gone, and remove
        entities that hold nothing (no state, lock, pause or queued operation)."""
        removed, released = self.store.run(_entities.clean)
        return EntityCleaning(removed, released)

    def pause_entity_type(
        self,
        name: str,
        reason: str | None = None,
        *,
        resume_at: datetime | None = None,
        by: str | None = None,
    ) -> bool:
        """Hold every entity of ``name``, those created later included: their operations
        queue until :meth:`resume_entity_type` (or ``resume_at``). ``False`` if such a
        pause stood already."""
        kind = EntityId(name, "k").name
        at, why, actor = check_time(resume_at, "resume_at"), check_text(reason), self._by(by)
        return self.store.run(
            lambda tx: _control.pause_type(
                tx, _entities.ENTITY, kind, reason=why, by=actor, resume_at=at, now=self.clock.now()
            )
        )

    def resume_entity_type(
        self, name: str, reason: str | None = None, *, by: str | None = None
    ) -> bool:
        """End a standing pause of an entity type; ``False`` if none stood."""
        kind = EntityId(name, "k").name
        why, actor = check_text(reason), self._by(by)
        return self.store.run(
            lambda tx: _control.resume_type(
                tx, _entities.ENTITY, kind, reason=why, by=actor, now=self.clock.now()
            )
        )

    def _pause_entity(
        self, entity_id: str, reason: str | None, resume_at: datetime | None, by: str | None
    ) -> bool:
        target = EntityId.parse(entity_id)
        at, why, actor = check_time(resume_at, "resume_at"), check_text(reason), self._by(by)
        return self.store.run(
            lambda tx: _entities.pause(
                tx, target, reason=why, by=actor, resume_at=at, now=self.clock.now()
            )
        )

    def _resume_entity(self, entity_id: str, reason: str | None, by: str | None) -> bool:
        target = EntityId.parse(entity_id)
        why, actor = check_text(reason), self._by(by)
        return self.store.run(
            lambda tx: _entities.resume(tx, target, reason=why, by=actor, now=self.clock.now())
        )


def _encode(entity_id: str) -> str:
    return base64.urlsafe_b64encode(entity_id.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        EntityId.parse(raw)
        return raw
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor(
            f"invalid cursor {cursor[:40]!r}: pass back the next_cursor of a previous page"
        ) from None
