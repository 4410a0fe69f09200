"""What an orchestration step asks the engine to do, and how it ends.

Orchestrator code never touches storage. Each ``ctx`` call that starts durable work
records an action; the worker commits the step's actions, together with the history
events they imply, in one transaction.

Each action says, in one place, which history event records it (:meth:`event`, its
type :attr:`EVENT`) and what the code does, in the words of a nondeterminism error
(:attr:`DOES`, for the action the code takes now and for the one the history holds).
Replay matches the two by :data:`BY_EVENT`. A new kind of action is a class here, its
event type in :mod:`tenuto.history`, the ``ctx`` call and the replayer method that make
it, and, if it writes more than its history event, its rows in :mod:`tenuto._step`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from . import history as h
from .retry import RetryPolicy
from .status import Failure


class _Action:
    """What every action has: its event and its description."""

    __slots__ = ()

    #: The type of the history event that records the action.
    EVENT: ClassVar[str]
    #: What the code does, for an error message: ``{name!r}`` is the action's name.
    DOES: ClassVar[str]

    task_id: int

    def event(self, now: float) -> h.Event:
        """The history event that records the action, at ``now``."""
        return h.Event(self.EVENT, now, {"task_id": self.task_id, **self._fields()})

    def _fields(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> str:
        """What the code does, as a nondeterminism error says it."""
        return self.DOES.format(name=getattr(self, "name", None))

    @classmethod
    def described(cls, data: dict[str, Any]) -> str:
        """What the code did, from the fields of the event that recorded it."""
        return cls.DOES.format(name=data.get("name"))


@dataclass(frozen=True, slots=True)
class ScheduleActivity(_Action):
    task_id: int
    name: str
    input: Any
    retry: RetryPolicy | None

    EVENT: ClassVar[str] = h.TASK_SCHEDULED
    DOES: ClassVar[str] = "calls activity {name!r}"

    def _fields(self) -> dict[str, Any]:
        return {"name": self.name, "input": self.input}


@dataclass(frozen=True, slots=True)
class CreateTimer(_Action):
    task_id: int
    fire_at: float

    EVENT: ClassVar[str] = h.TIMER_CREATED
    DOES: ClassVar[str] = "creates a timer"

    def _fields(self) -> dict[str, Any]:
        return {"fire_at": self.fire_at}


@dataclass(frozen=True, slots=True)
class CreateSubOrchestration(_Action):
    task_id: int
    name: str
    instance_id: str
    input: Any
    #: The child's version and tags (JSON text), as Durable Task SDKs may give them.
    version: str | None = None
    tags: str | None = None

    EVENT: ClassVar[str] = h.SUB_CREATED
    DOES: ClassVar[str] = "calls sub-orchestrator {name!r}"

    def _fields(self) -> dict[str, Any]:
        fields = {"name": self.name, "instance_id": self.instance_id, "input": self.input}
        if self.version is not None:
            fields["version"] = self.version
        return fields


@dataclass(frozen=True, slots=True)
class PauseSelf(_Action):
    task_id: int
    reason: str | None

    EVENT: ClassVar[str] = h.EXECUTION_SUSPENDED
    DOES: ClassVar[str] = "pauses itself"

    def _fields(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "by": "orchestration",
            "source": "orchestration",
            "resume_at": None,
        }


@dataclass(frozen=True, slots=True)
class SendEvent(_Action):
    task_id: int
    instance_id: str
    name: str
    data: Any

    EVENT: ClassVar[str] = h.EVENT_SENT
    DOES: ClassVar[str] = "sends event {name!r}"

    def _fields(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "name": self.name, "data": self.data}


@dataclass(frozen=True, slots=True)
class CallEntity(_Action):
    """Call an entity's operation; the task gives its result."""

    task_id: int
    entity: str
    name: str
    input: Any
    #: The id a Durable Task SDK gave the request (its results are matched by it).
    request_id: str | None = None

    EVENT: ClassVar[str] = h.ENTITY_CALLED
    DOES: ClassVar[str] = "calls entity operation {name!r}"

    def _fields(self) -> dict[str, Any]:
        return _with_request(
            {"entity": self.entity, "name": self.name, "input": self.input}, self.request_id
        )


@dataclass(frozen=True, slots=True)
class SignalEntity(_Action):
    """Send an entity a one-way operation, at ``signal_time`` (``None``: now)."""

    task_id: int
    entity: str
    name: str
    input: Any
    signal_time: float | None
    request_id: str | None = None

    EVENT: ClassVar[str] = h.ENTITY_SIGNALED
    DOES: ClassVar[str] = "signals entity operation {name!r}"

    def _fields(self) -> dict[str, Any]:
        fields = {
            "entity": self.entity,
            "name": self.name,
            "input": self.input,
            "signal_time": self.signal_time,
        }
        return _with_request(fields, self.request_id)


@dataclass(frozen=True, slots=True)
class LockEntities(_Action):
    """Lock entities (sorted) for a critical section; the task completes once all are."""

    task_id: int
    entities: tuple[str, ...]
    #: A Durable Task SDK's critical section id.
    request_id: str | None = None

    EVENT: ClassVar[str] = h.ENTITY_LOCK_REQUESTED
    DOES: ClassVar[str] = "locks entities"

    def _fields(self) -> dict[str, Any]:
        return _with_request({"entities": list(self.entities)}, self.request_id)


@dataclass(frozen=True, slots=True)
class UnlockEntities(_Action):
    """Release the entities of a critical section (one-way)."""

    task_id: int
    entities: tuple[str, ...]
    request_id: str | None = None

    EVENT: ClassVar[str] = h.ENTITY_UNLOCK_SENT
    DOES: ClassVar[str] = "unlocks entities"

    def _fields(self) -> dict[str, Any]:
        return _with_request({"entities": list(self.entities)}, self.request_id)


def _with_request(fields: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    if request_id is not None:
        fields["request_id"] = request_id
    return fields


@dataclass(frozen=True, slots=True)
class PatchMarker:
    """The code ran past ``ctx.patched(patch)`` for the first time: the history says so,
    so that every replay takes the same path. Not a durable call: it takes no task id
    (code with and without the patch number its calls alike), and replay does not match
    it with the code (see :meth:`tenuto.replay.Replayer.patched`)."""

    patch: str

    def event(self, now: float) -> h.Event:
        """The history event that records the marker, at ``now``."""
        return h.Event(h.PATCH_MARKER, now, {"patch": self.patch})


#: The actions that take a task id, matched with the history on replay.
DurableCall = (
    ScheduleActivity
    | CreateTimer
    | CreateSubOrchestration
    | PauseSelf
    | SendEvent
    | CallEntity
    | SignalEntity
    | LockEntities
    | UnlockEntities
)
Action = DurableCall | PatchMarker

#: Actions that send something and wait for nothing: what the code sent before it ended
#: is sent (see ``Replayer._finish``).
ONE_WAY = (SendEvent, SignalEntity, UnlockEntities)

#: Each kind of action by the type of the history event that records it.
BY_EVENT: dict[str, type[DurableCall]] = {
    kind.EVENT: kind
    for kind in (
        ScheduleActivity,
        CreateTimer,
        CreateSubOrchestration,
        PauseSelf,
        SendEvent,
        CallEntity,
        SignalEntity,
        LockEntities,
        UnlockEntities,
    )
}


@dataclass(frozen=True, slots=True)
class Completed:
    """The orchestrator function returned ``output``."""

    output: Any


@dataclass(frozen=True, slots=True)
class Failed:
    """The orchestrator function raised (or its code is not deterministic)."""

    failure: Failure


@dataclass(frozen=True, slots=True)
class ContinuedAsNew:
    """The orchestration restarts with ``input`` and a fresh history.

    ``carry_over`` holds external events received but not yet consumed, as
    ``(name, data)`` pairs, to deliver to the new execution in order.
    """

    input: Any
    carry_over: tuple[tuple[str, Any], ...]
    #: A new version for the next execution (``None``: keep the instance's version).
    version: str | None = None


Outcome = Completed | Failed | ContinuedAsNew
