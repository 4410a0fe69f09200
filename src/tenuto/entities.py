"""Durable entities: small addressable objects with durable state, one operation at a time.

An entity is named by an :class:`EntityId`, ``@name@key`` (``@counter@user-42``): the
name says which registered entity code runs it, the key which instance of it. It comes
into being with the first operation sent to it. Operations are applied one at a time, in
the order they arrive, each exactly once; the state they leave, and what they send
(signals, orchestrations started, the caller's result), commit together.

Two ways to write one, both registered with ``@app.entity``::

    @app.entity
    def counter(ctx: tenuto.EntityContext, amount: int | None = None):
        value = ctx.get_state(0)
        if ctx.operation == "add":
            ctx.set_state(value + amount)
        elif ctx.operation == "reset":
            ctx.delete_state()
        return value

    @app.entity
    class Account:
        def __init__(self) -> None:      # the state of a new entity
            self.balance = 0

        def deposit(self, amount: int) -> int:
            self.balance += amount
            return self.balance

A class's public methods are its operations and its public attributes its state (a JSON
object); ``self._ctx`` is the :class:`EntityContext` of the operation running. The
operation ``delete`` of a class without such a method deletes the state.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ._json import dumps, is_text, loads
from .errors import InvalidType, ValidationError
from .status import PauseInfo, to_timestamp

#: The longest entity name and key.
MAX_PART = 256


def _check_part(value: Any, what: str, *, at_allowed: bool) -> str:
    if not isinstance(value, str):
        raise InvalidType(f"an entity {what} must be a string, not {type(value).__name__}")
    if (
        not value
        or len(value) > MAX_PART
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
        or not is_text(value)
        or (not at_allowed and "@" in value)
        or any(c in value for c in "/\\#?")
    ):
        extra = "" if at_allowed else ", no '@'"
        raise ValidationError(
            f"invalid entity {what} {value[:80]!r}: use 1-{MAX_PART} characters without "
            f"'/', '\\', '#', '?' or control characters{extra}"
        )
    return value


@dataclass(frozen=True, slots=True, order=True)
class EntityId:
    """The id of an entity: its registered ``name`` (stored in lower case, as in Durable
    Functions) and its ``key``. ``str(EntityId("counter", "a"))`` is ``"@counter@a"``."""

    name: str
    key: str

    def __post_init__(self) -> None:
        name = _check_part(self.name, "name", at_allowed=False).lower()
        object.__setattr__(self, "name", name)
        _check_part(self.key, "key", at_allowed=True)

    def __str__(self) -> str:
        return f"@{self.name}@{self.key}"

    @classmethod
    def parse(cls, text: str) -> EntityId:
        """The id written ``@name@key``; a :class:`~tenuto.ValidationError` otherwise."""
        if not isinstance(text, str):
            raise InvalidType(f"an entity id must be a string, not {type(text).__name__}")
        name, sep, key = text[1:].partition("@")
        if not text.startswith("@") or not sep:
            raise ValidationError(
                f"invalid entity id {text[:80]!r}: write it @name@key (@counter@user-42)"
            )
        return cls(name, key)

    @classmethod
    def of(cls, value: EntityId | str) -> EntityId:
        """``value`` if it is an :class:`EntityId`, else parsed from ``@name@key``."""
        return value if isinstance(value, EntityId) else cls.parse(value)


def is_entity_id(text: Any) -> bool:
    """Whether ``text`` is written as an entity id, ``@name@key``, rather than an
    instance id (entity ids are how ``Client.pause`` tells the two apart)."""
    return isinstance(text, str) and text.startswith("@") and "@" in text[1:]


@dataclass(frozen=True, slots=True)
class EntityState:
    """What a client reads of an entity (:meth:`tenuto.Client.get_entity`)."""

    entity_id: EntityId
    #: Its state (``None`` without one, or when read with ``include_state=False``).
    state: Any
    #: Whether it has a state at all.
    has_state: bool
    last_modified: datetime
    #: The orchestration holding its lock (a critical section), if any.
    locked_by: str | None
    #: Operations queued for it, not applied yet.
    pending_operations: int
    #: Why it is paused (itself, or by a standing pause of its name: ``source="entity"``).
    pause: PauseInfo | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "entity_id": str(self.entity_id),
            "name": self.entity_id.name,
            "key": self.entity_id.key,
            "state": self.state,
            "has_state": self.has_state,
            "last_modified": self.last_modified.isoformat(),
            "locked_by": self.locked_by,
            "pending_operations": self.pending_operations,
            "pause": None if self.pause is None else self.pause.to_json(),
        }


@dataclass(slots=True)
class SignalSent:
    entity_id: EntityId
    operation: str
    input: str
    at: float


@dataclass(slots=True)
class OrchestrationStarted:
    name: str
    instance_id: str
    input: str


_NO_STATE: Any = object()


class EntityContext:
    """What an entity operation sees: which operation, on which entity, its state, and
    the ways to reach others (sent when the operation's batch commits, and only if the
    operation succeeds)."""

    def __init__(self, entity_id: EntityId, operation: str, state_json: str | None, now: float):
        self._id = entity_id
        self._operation = operation
        self._state_json = state_json
        self._state: Any = _NO_STATE
        self._now = now
        #: Whether the state was read or written (and so is stored again).
        self.touched = False
        self.deleted = False
        self.signals: list[SignalSent] = []
        self.starts: list[OrchestrationStarted] = []

    @property
    def operation(self) -> str:
        """The name of the operation running."""
        return self._operation

    @property
    def entity_id(self) -> EntityId:
        return self._id

    @property
    def has_state(self) -> bool:
        """Whether the entity has a state."""
        return self._current() is not _NO_STATE

    def get_state(self, default: Any = None) -> Any:
        """The entity's state, or ``default`` if it has none. Changes made to the value
        returned are kept (it is stored again when the operation succeeds)."""
        value = self._current()
        self.touched = True
        if value is _NO_STATE:
            return default
        return value

    def set_state(self, value: Any) -> None:
        """Replace the entity's state with a JSON value."""
        dumps(value, f"the state of entity {str(self._id)!r}")
        self._state, self.touched, self.deleted = value, True, False

    def delete_state(self) -> None:
        """Delete the entity's state (an entity without state and without queued
        operations is removed by ``Client.clean_entity_storage``)."""
        self._state, self.touched, self.deleted = _NO_STATE, True, True

    def signal_entity(
        self,
        entity_id: EntityId | str,
        operation: str,
        input: Any = None,
        *,
        signal_time: datetime | timedelta | None = None,
    ) -> None:
        """Send a one-way operation to an entity (this one included), at once or at
        ``signal_time``."""
        target = EntityId.of(entity_id)
        at = self._now
        if isinstance(signal_time, timedelta):
            at = self._now + signal_time.total_seconds()
        elif isinstance(signal_time, datetime):
            at = to_timestamp(signal_time)
        elif signal_time is not None:
            raise TypeError("signal_time must be a datetime or a timedelta")
        text = dumps(input, f"the input of operation {operation!r}")
        self.signals.append(SignalSent(target, check_operation(operation), text, at))

    def start_orchestration(
        self,
        orchestrator: str | Callable[..., Any],
        input: Any = None,
        *,
        instance_id: str | None = None,
    ) -> str:
        """Start an orchestration (when the operation's batch commits); returns its id.
        An id that is taken by then is left as it is."""
        from ._ids import check_instance_id
        from .app import name_of

        name = name_of(orchestrator)
        iid = uuid.uuid4().hex if instance_id is None else check_instance_id(instance_id)
        text = dumps(input, f"the input of orchestrator {name!r}")
        self.starts.append(OrchestrationStarted(name, iid, text))
        return iid

    def _current(self) -> Any:
        if self._state is _NO_STATE and not self.deleted and self._state_json is not None:
            self._state = loads(self._state_json)
        return self._state

    def state_json(self) -> str | None:
        """The state to store after the operation."""
        if not self.touched:
            return self._state_json
        value = self._current()
        return None if value is _NO_STATE else dumps(value, f"the state of entity {self._id}")


def check_operation(operation: Any) -> str:
    """Validate an operation name: 1-256 characters, no control characters."""
    if not isinstance(operation, str):
        raise InvalidType(f"an operation name must be a string, not {type(operation).__name__}")
    if not operation or len(operation) > 256 or any(ord(c) < 32 for c in operation):
        raise ValidationError(
            f"invalid operation name {operation[:80]!r}: use 1-256 characters and no "
            "control characters"
        )
    return operation


@dataclass(frozen=True, slots=True)
class Entity:
    """A registered entity: a function ``(ctx, input)`` or a class."""

    name: str
    target: Any
    takes_input: bool = True
    operations: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, name: str, target: Any) -> Entity:
        if inspect.isclass(target):
            ops = frozenset(
                n for n, v in inspect.getmembers(target, callable) if not n.startswith("_")
            )
            return cls(name, target, True, ops)
        params = [
            p
            for p in inspect.signature(target).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
        takes = len(params) > 1 or any(p.kind is p.VAR_POSITIONAL for p in params)
        return cls(name, target, takes)

    def run(self, ctx: EntityContext, input: Any) -> Any:
        """Run one operation; returns its result (user code may raise anything)."""
        if inspect.isclass(self.target):
            result = self._run_method(ctx, input)
        else:
            result = self.target(ctx, input) if self.takes_input else self.target(ctx)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        return result

    def _run_method(self, ctx: EntityContext, input: Any) -> Any:
        op = ctx.operation
        if op not in self.operations:
            if op == "delete":
                ctx.delete_state()
                return None
            raise ValueError(
                f"entity {self.name!r} has no operation {op!r}; its operations: "
                f"{', '.join(sorted(self.operations)) or 'none'}"
            )
        state = ctx.get_state(_NO_STATE)
        if state is _NO_STATE:
            obj = self.target()
        else:
            obj = self.target.__new__(self.target)
            if isinstance(state, dict):
                vars(obj).update(state)
        obj._ctx = ctx
        method = getattr(obj, op)
        params = [
            p
            for p in inspect.signature(method).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
        result = method(input) if params else method()
        if not ctx.deleted:
            ctx.set_state({k: v for k, v in vars(obj).items() if not k.startswith("_")})
        return result
