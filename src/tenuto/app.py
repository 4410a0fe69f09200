"""The registry of orchestrators and activities: ``@app.orchestrator``, ``@app.activity``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._json import is_text
from .errors import InvalidType, UnknownActivity, UnknownOrchestrator, ValidationError
from .retry import EXHAUSTED_POLICIES, RetryPolicy

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


#: What replay does when the code no longer matches an instance's history.
NONDETERMINISM_POLICIES = ("pause", "fail")


def check_policy(value: object, allowed: tuple[str, ...], what: str) -> str | None:
    """``value`` if it is one of ``allowed`` (or ``None``: not said here); a clear
    ``ValueError`` otherwise (a programming error, raised where the app is defined)."""
    if value is None or value in allowed:
        return value
    choices = " or ".join(repr(a) for a in allowed)
    raise ValueError(f"{what} must be {choices}, not {value!r}")


@dataclass(frozen=True, slots=True)
class Orchestrator:
    """A registered orchestrator function."""

    name: str
    fn: Callable[..., Any]
    takes_input: bool
    #: ``"pause"`` or ``"fail"``; ``None``: the app's (see ``App(on_nondeterminism=...)``).
    on_nondeterminism: str | None = None

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
    #: Code defaults of its flow-control limit (see ``Client.limit_activity``).
    max_concurrent: int | None = None
    per_second: float | None = None


@dataclass(frozen=True, slots=True)
class DeclaredSchedule:
    """A schedule declared with ``@app.schedule``: workers create or update it at start."""

    schedule_id: str
    orchestrator: str
    input: Any
    options: Mapping[str, Any]


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

    ``on_nondeterminism``: what happens when replay finds that the code no longer matches
    an instance's history (the code changed under it): ``"pause"`` (the default) pauses
    the instance, with the mismatch in its pause reason and its history untouched, so
    that it can be resumed once the code is fixed or rolled back; ``"fail"`` fails it
    with :class:`~tenuto.NonDeterminismError`. Each orchestrator may say otherwise.

    ``on_exhausted``: what happens when the last attempt of an activity fails, for calls
    whose :class:`~tenuto.RetryPolicy` does not say: ``"raise"`` (the default) raises
    :class:`~tenuto.ActivityFailed` in the orchestrator; ``"pause"`` pauses the instance
    with the error in its pause reason (see "Changing code" in the docs).
    """

    def __init__(
        self,
        *,
        retention: Retention | str | Mapping[str, Any] | None = None,
        on_nondeterminism: str = "pause",
        on_exhausted: str = "raise",
    ) -> None:
        self._orchestrators: dict[str, Orchestrator] = {}
        self._activities: dict[str, Activity] = {}
        self._schedules: dict[str, DeclaredSchedule] = {}
        self._entities: dict[str, Entity] = {}
        self.retention = None if retention is None else _retention().of(retention)
        self.on_nondeterminism: str = (
            check_policy(on_nondeterminism, NONDETERMINISM_POLICIES, "App(on_nondeterminism=...)")
            or "pause"
        )
        self.on_exhausted: str = (
            check_policy(on_exhausted, EXHAUSTED_POLICIES, "App(on_exhausted=...)") or "raise"
        )

    @overload
    def orchestrator(self, fn: F, /) -> F: ...
    @overload
    def orchestrator(
        self, /, *, name: str | None = None, on_nondeterminism: str | None = None
    ) -> Callable[[F], F]: ...

    def orchestrator(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        on_nondeterminism: str | None = None,
    ) -> Any:
        """Register an orchestrator: a generator function, an ``async def``, or a plain
        function, taking ``(ctx)`` or ``(ctx, input)``.

        ``on_nondeterminism`` (``"pause"`` or ``"fail"``) overrides the app's policy for
        this orchestrator."""
        policy = check_policy(
            on_nondeterminism, NONDETERMINISM_POLICIES, "@app.orchestrator(on_nondeterminism=...)"
        )

        def register(f: F) -> F:
            key = name or f.__name__
            self._check_free(key, self._orchestrators, "orchestrator")
            self._orchestrators[key] = Orchestrator(key, f, _takes_input(f, 1), policy)
            setattr(f, _NAME_ATTR, key)
            return f

        return register(fn) if fn is not None else register

    @overload
    def activity(self, fn: F, /) -> F: ...
    @overload
    def activity(
        self,
        /,
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        max_concurrent: int | None = None,
        per_second: float | None = None,
    ) -> Callable[[F], F]: ...

    def activity(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        max_concurrent: int | None = None,
        per_second: float | None = None,
    ) -> Any:
        """Register an activity: a plain function (run in a thread) or an ``async def``
        (run on the worker's event loop), taking no argument or one JSON input.

        ``retry`` is the default policy for calls that do not pass their own.
        ``max_concurrent`` and ``per_second`` declare a flow-control limit that workers
        set at start unless a client set one (``Client.limit_activity``)."""
        if max_concurrent is not None or per_second is not None:
            from ._limits import check_limit

            check_limit(max_concurrent, per_second)

        def register(f: F) -> F:
            key = name or f.__name__
            self._check_free(key, self._activities, "activity")
            self._activities[key] = Activity(
                key,
                f,
                _takes_input(f, 0),
                inspect.iscoroutinefunction(f),
                retry,
                max_concurrent,
                per_second,
            )
            setattr(f, _NAME_ATTR, key)
            return f

        return register(fn) if fn is not None else register

    def schedule(self, schedule_id: str, input: Any = None, **options: Any) -> Callable[[F], F]:
        """Declare a schedule of the orchestrator it decorates (put it above
        ``@app.orchestrator``); workers create it at start, or update it if it changed.
        ``options`` are those of ``Client.create_schedule`` (``cron=``, ``every=``,
        ``timezone=``, ``overlap=``...), checked here."""
        from .schedules import ScheduleSpec, check_schedule_id

        check_schedule_id(schedule_id)
        if schedule_id in self._schedules:
            raise ValueError(f"a schedule {schedule_id!r} is already declared in this app")
        ScheduleSpec.of(**options)

        def register(f: F) -> F:
            orchestrator = name_of(f)
            self._schedules[schedule_id] = DeclaredSchedule(
                schedule_id, orchestrator, input, dict(options)
            )
            return f

        return register

    @property
    def schedules(self) -> list[DeclaredSchedule]:
        """The schedules declared with :meth:`schedule`."""
        return list(self._schedules.values())

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
