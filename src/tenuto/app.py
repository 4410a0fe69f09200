"""The registry of orchestrators and activities: ``@app.orchestrator``, ``@app.activity``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._json import is_text
from .errors import InvalidType, UnknownActivity, UnknownOrchestrator, ValidationError
from .retry import RetryPolicy

if TYPE_CHECKING:
    from .entities import Entity
    from .retention import Retention


def _retention() -> type[Retention]:
    from .retention import Retention  # retention imports app (names are checked there)

    return Retention


F = TypeVar("F", bound=Callable[..., Any])

_NAME_ATTR = "__tenuto_name__"


def _takes_input(fn: Callable[..., Any], leading: int) -> bool:
    """Whether ``fn`` accepts an input argument after ``leading`` positional ones."""
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    return len(params) > leading


@dataclass(frozen=True, slots=True)
class Orchestrator:
    """A registered orchestrator function."""

    name: str
    fn: Callable[..., Any]
    takes_input: bool

    def invoke(self, ctx: Any, input: Any) -> Any:
        return self.fn(ctx, input) if self.takes_input else self.fn(ctx)


@dataclass(frozen=True, slots=True)
class Activity:
    """A registered activity function."""

    name: str
    fn: Callable[..., Any]
    takes_input: bool
    is_async: bool
    retry: RetryPolicy | None


def check_name(name: str, what: str = "a name") -> str:
    """Validate an orchestrator, activity or event name: 1-256 characters, no control
    characters (names go into URLs, logs and every database)."""
    if not isinstance(name, str):
        raise InvalidType(f"{what} must be a string, not {type(name).__name__}")
    if (
        not name
        or len(name) > 256
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
        or not is_text(name)
    ):
        raise ValidationError(
            f"invalid {what} {name[:80]!r}: use 1-256 characters and no control characters "
            "or lone surrogates"
        )
    return name


def name_of(ref: str | Callable[..., Any]) -> str:
    """The registered name of an orchestrator or activity given by name or by function."""
    if isinstance(ref, str):
        return check_name(ref)
    name = getattr(ref, _NAME_ATTR, None)
    if name is None:
        raise InvalidType(
            f"{getattr(ref, '__qualname__', ref)!r} is not a registered orchestrator or "
            "activity; decorate it with @app.orchestrator or @app.activity, or pass its name"
        )
    return str(name)


class App:
    """A set of orchestrators and activities, registered with decorators.

    ::

        app = tenuto.App()

        @app.activity
        def add_one(x: int) -> int:
            return x + 1

        @app.orchestrator
        def flow(ctx, x):
            return (yield ctx.call_activity(add_one, x))

    The decorators return the function unchanged, so it stays callable and testable.

    ``retention``: how long the workers of this app keep finished instances, unless a
    policy is stored in the database (see :class:`tenuto.Retention`), e.g.
    ``App(retention="COMPLETED=30d,FAILED=90d")``.
    """

    def __init__(self, *, retention: Retention | str | Mapping[str, Any] | None = None) -> None:
        self._orchestrators: dict[str, Orchestrator] = {}
        self._activities: dict[str, Activity] = {}
        self._entities: dict[str, Entity] = {}
        self.retention = None if retention is None else _retention().of(retention)

    @overload
    def orchestrator(self, fn: F, /) -> F: ...
    @overload
    def orchestrator(self, /, *, name: str | None = None) -> Callable[[F], F]: ...

    def orchestrator(
        self, fn: Callable[..., Any] | None = None, /, *, name: str | None = None
    ) -> Any:
        """Register an orchestrator: a generator function, an ``async def``, or a plain
        function, taking ``(ctx)`` or ``(ctx, input)``."""

        def register(f: F) -> F:
            key = name or f.__name__
            self._check_free(key, self._orchestrators, "orchestrator")
            self._orchestrators[key] = Orchestrator(key, f, _takes_input(f, 1))
            setattr(f, _NAME_ATTR, key)
            return f

        return register(fn) if fn is not None else register

    @overload
    def activity(self, fn: F, /) -> F: ...
    @overload
    def activity(
        self, /, *, name: str | None = None, retry: RetryPolicy | None = None
    ) -> Callable[[F], F]: ...

    def activity(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> Any:
        """Register an activity: a plain function (run in a thread) or an ``async def``
        (run on the worker's event loop), taking no argument or one JSON input.

        ``retry`` is the default policy for calls that do not pass their own."""

        def register(f: F) -> F:
            key = name or f.__name__
            self._check_free(key, self._activities, "activity")
            self._activities[key] = Activity(
                key, f, _takes_input(f, 0), inspect.iscoroutinefunction(f), retry
            )
            setattr(f, _NAME_ATTR, key)
            return f

        return register(fn) if fn is not None else register

    @staticmethod
    def _check_free(key: str, table: dict[str, Any], kind: str) -> None:
        if not key:
            raise ValueError(f"an {kind} name must not be empty")
        if key in table:
            raise ValueError(f"an {kind} named {key!r} is already registered in this app")

    def get_orchestrator(self, ref: str | Callable[..., Any]) -> Orchestrator:
        """The orchestrator registered under ``ref``; ``UnknownOrchestrator`` if none."""
        key = name_of(ref)
        try:
            return self._orchestrators[key]
        except KeyError:
            raise UnknownOrchestrator(key, list(self._orchestrators)) from None

    def get_activity(self, ref: str | Callable[..., Any]) -> Activity:
        """The activity registered under ``ref``; ``UnknownActivity`` if none."""
        key = name_of(ref)
        try:
            return self._activities[key]
        except KeyError:
            raise UnknownActivity(key, list(self._activities)) from None

    @property
    def orchestrator_names(self) -> list[str]:
        return list(self._orchestrators)

    @property
    def activity_names(self) -> list[str]:
        return list(self._activities)

    # -- entities (see tenuto.entities) ---------------------------------------------------

    @overload
    def entity(self, target: F, /) -> F: ...
    @overload
    def entity(self, /, *, name: str | None = None) -> Callable[[F], F]: ...

    def entity(self, target: Any = None, /, *, name: str | None = None) -> Any:
        """Register a durable entity: a function ``(ctx, input)`` that dispatches on
        ``ctx.operation``, or a class whose public methods are its operations (see
        :mod:`tenuto.entities`). Its name (stored in lower case) defaults to the
        function's or class's."""
        from .entities import Entity, EntityId

        def register(t: F) -> F:
            key = EntityId(name or t.__name__, "k").name
            self._check_free(key, self._entities, "entity")
            self._entities[key] = Entity.of(key, t)
            setattr(t, _NAME_ATTR, key)
            return t

        return register(target) if target is not None else register

    def get_entity(self, name: str) -> Entity | None:
        """The entity registered under ``name`` (any case), or ``None``."""
        return self._entities.get(name.lower())

    @property
    def entity_names(self) -> list[str]:
        return list(self._entities)
