"""The errors tenuto raises. Each says what was wrong and what to do about it."""

from __future__ import annotations

from .status import Failure, Status

#: Ids and names longer than this are cut short in messages (a message must fit in an
#: HTTP header or gRPC metadata; the full text helps no one).
SHOWN_CHARS = 256


def shown(text: str) -> str:
    """``text`` quoted for a message; cut short, with its length, if it is long."""
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return f"{text[:64]!r}... ({len(text)} characters)"


class TenutoError(Exception):
    """Base class of every error tenuto raises on purpose."""


class ValidationError(TenutoError, ValueError):
    """A value given to tenuto is invalid: an instance id, a name, a reason, a time, a
    filter, a page size, a version or tags, a database URL, an option. The message says
    what was wrong and what to give instead; nothing is written.

    This is how tenuto tells the caller's mistakes from its own: every entry point reports
    a ``ValidationError`` as the caller's fault (HTTP 422, 400 on the Durable Functions
    routes, gRPC ``INVALID_ARGUMENT``, exit code 1 on the command line), and any other
    unexpected exception, a plain ``ValueError`` or ``TypeError`` included, as an internal
    error (HTTP 500, gRPC ``INTERNAL``, exit code 70). A ``ValueError``, as tenuto's
    refusals have always been."""


class InvalidType(ValidationError, TypeError):
    """A value of the wrong type (a number where a string is needed, say): a
    :class:`ValidationError`, and a ``TypeError`` as such refusals have always been."""


class InstanceNotFound(TenutoError, LookupError):
    """No instance has this id (it never existed, or it was purged). HTTP 404."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(f"no orchestration instance with id {shown(instance_id)}")
        self.instance_id = instance_id


class InstanceFinished(TenutoError):
    """The operation needs a live instance, but this one has finished. HTTP 409."""

    def __init__(self, instance_id: str, status: Status, operation: str) -> None:
        super().__init__(
            f"cannot {operation} instance {instance_id!r}: it has already finished ({status.value})"
        )
        self.instance_id = instance_id
        self.status = status
        self.operation = operation


class InstanceNotFinished(TenutoError):
    """The operation needs a finished instance (purge), but this one is still live."""

    def __init__(self, instance_id: str, status: Status) -> None:
        super().__init__(
            f"cannot purge instance {instance_id!r}: it is {status.value}; terminate it "
            "first or wait for it to finish"
        )
        self.instance_id = instance_id
        self.status = status


class InstanceExists(TenutoError):
    """``start`` was given an instance id that is already taken. HTTP 409."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(
            f"an instance with id {instance_id!r} already exists; choose another id, or "
            "purge the old instance first"
        )
        self.instance_id = instance_id


class UnknownOrchestrator(TenutoError, LookupError):
    """No orchestrator is registered under this name."""

    def __init__(self, name: str, known: list[str]) -> None:
        hint = ", ".join(sorted(known)) if known else "none"
        super().__init__(
            f"no orchestrator named {name!r} is registered (known orchestrators: {hint})"
        )
        self.name = name


class UnknownActivity(TenutoError, LookupError):
    """No activity is registered under this name."""

    def __init__(self, name: str, known: list[str]) -> None:
        hint = ", ".join(sorted(known)) if known else "none"
        super().__init__(f"no activity named {name!r} is registered (known activities: {hint})")
        self.name = name


class NonDeterminismError(TenutoError):
    """Orchestrator code no longer does what its history says it did.

    Replaying history must reproduce the same steps in the same order. This error means
    the code changed under a running instance (or depends on something that is not
    replay-safe, such as the wall clock or random numbers outside ``ctx``).

    ``mismatch`` says where and how: the step, what the history recorded there, and
    what the code does now.
    """

    def __init__(self, message: str, *, mismatch: str | None = None) -> None:
        super().__init__(message)
        self.mismatch = mismatch or message


class TaskFailed(TenutoError):
    """A task awaited by an orchestration failed; ``failure`` holds the details."""

    def __init__(self, message: str, failure: Failure) -> None:
        super().__init__(message)
        self.failure = failure

    @property
    def type(self) -> str:
        """The qualified name of the original exception type."""
        return self.failure.type

    @property
    def traceback(self) -> str | None:
        """The original traceback text, as formatted where the error happened."""
        return self.failure.traceback


class ActivityFailed(TaskFailed):
    """An activity raised on its last attempt. Catch it in the orchestrator to handle it."""

    def __init__(self, activity: str, failure: Failure, attempts: int = 1) -> None:
        tries = "" if attempts == 1 else f" after {attempts} attempts"
        super().__init__(f"activity {activity!r} failed{tries}: {failure}", failure)
        self.activity = activity
        self.attempts = attempts


class SubOrchestrationFailed(TaskFailed):
    """A sub-orchestration ended FAILED or TERMINATED."""

    def __init__(self, name: str, instance_id: str, failure: Failure) -> None:
        super().__init__(
            f"sub-orchestration {name!r} (instance {instance_id!r}) failed: {failure}", failure
        )
        self.orchestrator = name
        self.instance_id = instance_id


class EventTimeout(TenutoError, TimeoutError):
    """``ctx.wait_for_event(name, timeout=...)`` timed out before the event arrived."""


class WaitTimeout(TenutoError, TimeoutError):
    """``client.wait(..., timeout=...)`` gave up before the instance finished."""


class InvalidCursor(ValidationError):
    """A query cursor was not one this engine produced."""


class InvalidJSON(ValidationError, TypeError):
    """A value that cannot be stored as JSON text: NaN or Infinity, a string with a lone
    surrogate, an integer of more than 4300 digits, a circular reference, or lists and
    objects nested more than 100 levels deep. The message names the value and where in
    it the problem is.

    Raised before anything is written (HTTP 422, 400 on the Durable Functions routes;
    gRPC ``INVALID_ARGUMENT``). An activity that returns such a value fails with it (and
    is retried per its policy); an orchestration that returns one, or sets one as its
    custom status, fails with it. A :class:`ValidationError` (so a ``ValueError``), and a
    ``TypeError`` as well, as tenuto's refusals of values that are not JSON have always
    been.
    """


class EntityOperationFailed(TaskFailed):
    """An entity operation called with ``ctx.call_entity`` raised; the entity's state is
    as it was before the operation."""

    def __init__(self, entity_id: str, operation: str, failure: Failure) -> None:
        super().__init__(
            f"operation {operation!r} of entity {entity_id!r} failed: {failure}", failure
        )
        self.entity_id = entity_id
        self.operation = operation


class LockingRulesViolation(TenutoError, RuntimeError):
    """Orchestration code broke a rule of critical sections: it locked entities while
    holding locks, or called an entity it does not hold inside a critical section."""


class UnknownEntity(ValidationError, LookupError):
    """No worker serves entities of this name (a signal to it would wait forever)."""

    def __init__(self, name: str, known: list[str]) -> None:
        hint = ", ".join(sorted(known)) if known else "none"
        super().__init__(
            f"no entity named {name!r} is registered by any worker (known entities: {hint}); "
            "register it with @app.entity, or pass check_names=False to the client"
        )
        self.name = name
