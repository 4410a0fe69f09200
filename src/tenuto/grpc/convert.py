"""Between tenuto's records and the Durable Task protocol's messages.

History events go out as protobuf ``HistoryEvent``s; the actions an SDK worker sends back
come in as tenuto :mod:`~tenuto.actions`. Task ids are the SDK's sequence numbers, kept
as they come: a ``TaskScheduled`` event's ``eventId`` and its result's
``taskScheduledId`` are the ``task_id`` that tenuto stores, so a replay on any worker
sees the same ids.

Payloads (inputs, outputs, event data) travel as JSON text and are kept as that text
(:class:`tenuto._json.Raw`), so an SDK gets back exactly the bytes it sent; tenuto's own
readers decode the same text to the same value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import durabletask.internal.orchestrator_service_pb2 as pb
from google.protobuf import timestamp_pb2, wrappers_pb2

from .. import history as h
from .._checks import check_tags, check_version
from .._ids import check_instance_id
from .._json import Raw, dumps, loads, raw, raw_fields
from ..actions import (
    Action,
    CallEntity,
    Completed,
    ContinuedAsNew,
    CreateSubOrchestration,
    CreateTimer,
    Failed,
    LockEntities,
    Outcome,
    ScheduleActivity,
    SendEvent,
    SignalEntity,
    UnlockEntities,
)
from ..entities import EntityId
from ..errors import InvalidJSON, ValidationError
from ..status import Failure, Status
from ..store.base import InstanceRow

#: tenuto statuses as the protocol names them (PAUSED is the protocol's SUSPENDED).
STATUS_TO_PB: dict[Status, Any] = {
    Status.PENDING: pb.ORCHESTRATION_STATUS_PENDING,
    Status.RUNNING: pb.ORCHESTRATION_STATUS_RUNNING,
    Status.PAUSED: pb.ORCHESTRATION_STATUS_SUSPENDED,
    Status.COMPLETED: pb.ORCHESTRATION_STATUS_COMPLETED,
    Status.FAILED: pb.ORCHESTRATION_STATUS_FAILED,
    Status.TERMINATED: pb.ORCHESTRATION_STATUS_TERMINATED,
}
STATUS_FROM_PB: dict[Any, Status] = {v: k for k, v in STATUS_TO_PB.items()}

#: History events the SDK's replay does not need: tenuto's pause records. A paused
#: instance is never dispatched, so its orchestrator code never sees the pause.
_NOT_REPLAYED = frozenset(
    {
        h.EXECUTION_SUSPENDED,
        h.EXECUTION_RESUMED,
        h.ACTIVITY_HELD,
        h.ACTIVITY_RELEASED,
        h.EXECUTION_REWOUND,
        h.REWOUND,
        h.PATCH_MARKER,
        h.EXECUTION_RESTARTED,
    }
)


class BadPayload(ValidationError):
    """A payload that is not JSON text."""


# -- scalars ---------------------------------------------------------------------------


def timestamp(ts: float) -> timestamp_pb2.Timestamp:
    """Epoch seconds as a protobuf ``Timestamp``, rounded to the microsecond.

    The SDKs compute with microsecond datetimes, and a timer's ``fireAt`` comes back as
    one: a double holds a current epoch to about 0.2 us, so without the rounding a time
    the SDK sent could come back a nanosecond early, and an SDK that compares it with
    the time it asked for (chunked long timers) would wait for it forever."""
    out = timestamp_pb2.Timestamp()
    micros = round(ts * 1_000_000)
    out.seconds, rest = divmod(micros, 1_000_000)
    out.nanos = rest * 1000
    return out


def epoch(ts: timestamp_pb2.Timestamp) -> float:
    return float(ts.seconds) + float(ts.nanos) / 1e9


def optional_time(message: Any, field: str) -> float | None:
    """Epoch seconds of an optional ``Timestamp`` field."""
    return epoch(getattr(message, field)) if message.HasField(field) else None


def text(value: Any) -> wrappers_pb2.StringValue | None:
    """A JSON value as the protocol's optional JSON text (``None`` stays absent)."""
    if value is None:
        return None
    return wrappers_pb2.StringValue(value=dumps(value))


def parse(message: Any, field: str, what: str) -> Raw | None:
    """The JSON text in an optional ``StringValue`` field, kept verbatim (absent or
    empty: ``None``); :class:`BadPayload` if it is not JSON."""
    if not message.HasField(field):
        return None
    text = getattr(message, field).value
    if text == "":
        return None
    try:
        return raw(text, what)  # InvalidJSON for a value tenuto cannot store
    except json.JSONDecodeError:
        raise BadPayload(f"{what} is not JSON text: {text[:80]!r}") from None


def lenient(message: Any, field: str, what: str | None = None) -> Raw | None:
    """:func:`parse`, keeping text that is not JSON as a JSON string instead of refusing
    it (for results that an SDK worker already produced); JSON text whose value tenuto
    cannot store still raises :class:`~tenuto.InvalidJSON`."""
    try:
        return parse(message, field, what or field)
    except BadPayload:
        return Raw(json.dumps(getattr(message, field).value, ensure_ascii=False))


def payload(event: h.Event, key: str) -> str | None:
    """The JSON text of payload field ``key`` of ``event`` (``None``: no value): the
    text an SDK sent, byte for byte, or tenuto's encoding of its own values."""
    value = event.data.get(key)
    if value is None:
        return None
    if type(value) is Raw:
        return value.text
    if event.raw is not None:
        text = raw_fields(event.raw).get(key)
        if text is not None:
            return text
    return dumps(value)


def optional_text(message: Any, field: str) -> str | None:
    """The text of an optional ``StringValue`` field (absent or empty: ``None``)."""
    if not message.HasField(field):
        return None
    return str(getattr(message, field).value) or None


def failure_details(failure: Failure | dict[str, Any] | None) -> pb.TaskFailureDetails:
    if isinstance(failure, dict):
        failure = Failure.from_json(failure)
    if failure is None:
        failure = Failure("tenuto.Unknown", "failed")
    details = pb.TaskFailureDetails(errorType=failure.type, errorMessage=failure.message)
    if failure.traceback:
        details.stackTrace.value = failure.traceback
    return details


def failure_of(details: pb.TaskFailureDetails) -> Failure:
    trace = details.stackTrace.value if details.HasField("stackTrace") else None
    return Failure(details.errorType or "Error", details.errorMessage, trace)


# -- history ---------------------------------------------------------------------------


def _task_id(event: h.Event) -> int:
    value = event.data.get("task_id")
    return int(value) if isinstance(value, int) else -1


def history_event(
    event: h.Event, row: InstanceRow, requests: dict[int, str] | None = None
) -> pb.HistoryEvent | None:
    """One tenuto history event as the protocol's; ``None`` for events it has no form
    for. ``requests``: the request id of each entity call or lock request by task id,
    for its result's event (see :func:`history`)."""
    d = event.data
    out = pb.HistoryEvent(eventId=-1, timestamp=timestamp(event.ts))
    t = event.type
    if t == h.ORCHESTRATOR_STARTED:
        out.orchestratorStarted.SetInParent()
    elif t == h.EXECUTION_STARTED:
        started = out.executionStarted
        started.name = d.get("name") or row.name
        started.orchestrationInstance.instanceId = row.instance_id
        started.orchestrationInstance.executionId.value = row.execution_id
        # The current execution's input, as stored (history holds only that execution).
        if row.input is not None and row.input != "null":
            started.input.value = row.input
        if row.parent_instance_id:
            parent = started.parentInstance
            parent.taskScheduledId = row.parent_task_id if row.parent_task_id is not None else -1
            parent.orchestrationInstance.instanceId = row.parent_instance_id
            if row.parent_execution_id:
                parent.orchestrationInstance.executionId.value = row.parent_execution_id
        if row.start_at is not None:
            started.scheduledStartTimestamp.CopyFrom(timestamp(row.start_at))
        if row.version is not None:
            started.version.value = row.version
        if row.tags is not None:
            started.tags.update(loads(row.tags))
        if row.trace_parent is not None:
            started.parentTraceContext.traceParent = row.trace_parent
    elif t == h.TASK_SCHEDULED:
        out.eventId = _task_id(event)
        out.taskScheduled.name = d.get("name", "")
        _set(out.taskScheduled.input, payload(event, "input"))
    elif t == h.TASK_COMPLETED:
        out.taskCompleted.taskScheduledId = _task_id(event)
        _set(out.taskCompleted.result, payload(event, "result"))
    elif t == h.TASK_FAILED:
        out.taskFailed.taskScheduledId = _task_id(event)
        out.taskFailed.failureDetails.CopyFrom(failure_details(d.get("failure")))
    elif t == h.TIMER_CREATED:
        out.eventId = _task_id(event)
        out.timerCreated.fireAt.CopyFrom(timestamp(float(d.get("fire_at", event.ts))))
    elif t == h.TIMER_FIRED:
        out.timerFired.timerId = _task_id(event)
        out.timerFired.fireAt.CopyFrom(timestamp(float(d.get("fire_at", event.ts))))
    elif t == h.SUB_CREATED:
        out.eventId = _task_id(event)
        created = out.subOrchestrationInstanceCreated
        created.name = d.get("name", "")
        created.instanceId = d.get("instance_id", "")
        _set(created.input, payload(event, "input"))
        if d.get("version") is not None:
            created.version.value = str(d["version"])
    elif t == h.SUB_COMPLETED:
        out.subOrchestrationInstanceCompleted.taskScheduledId = _task_id(event)
        _set(out.subOrchestrationInstanceCompleted.result, payload(event, "result"))
    elif t == h.SUB_FAILED:
        out.subOrchestrationInstanceFailed.taskScheduledId = _task_id(event)
        out.subOrchestrationInstanceFailed.failureDetails.CopyFrom(
            failure_details(d.get("failure"))
        )
    elif t == h.EVENT_RAISED:
        out.eventRaised.name = d.get("name", "")
        _set(out.eventRaised.input, payload(event, "data"))
    elif t == h.EVENT_SENT:
        out.eventId = _task_id(event)
        out.eventSent.instanceId = d.get("instance_id", "")
        out.eventSent.name = d.get("name", "")
        _set(out.eventSent.input, payload(event, "data"))
    elif t == h.EXECUTION_SUSPENDED:
        out.executionSuspended.SetInParent()
        if d.get("reason") is not None:
            out.executionSuspended.input.value = str(d["reason"])
    elif t == h.EXECUTION_RESUMED:
        out.executionResumed.SetInParent()
        if d.get("reason") is not None:
            out.executionResumed.input.value = str(d["reason"])
    elif t == h.EXECUTION_TERMINATED:
        out.executionTerminated.SetInParent()
        if d.get("reason") is not None:
            out.executionTerminated.input.value = dumps(d["reason"])
    elif t == h.EXECUTION_COMPLETED:
        done = out.executionCompleted
        if d.get("status") == Status.FAILED.value:
            done.orchestrationStatus = pb.ORCHESTRATION_STATUS_FAILED
            done.failureDetails.CopyFrom(failure_details(d.get("failure")))
        else:
            done.orchestrationStatus = pb.ORCHESTRATION_STATUS_COMPLETED
            _set(done.result, payload(event, "result"))
    elif t == h.CONTINUED_AS_NEW:
        out.continueAsNew.SetInParent()
        _set(out.continueAsNew.input, payload(event, "input"))
    elif t in _ENTITY_EVENTS:
        _entity_event(out, event, row, requests or {})
    else:
        # ActivityHeld / ActivityReleased and anything newer: a generic record.
        out.genericEvent.data.value = dumps({"type": t, **d})
    return out


_ENTITY_EVENTS = frozenset(
    {
        h.ENTITY_CALLED,
        h.ENTITY_SIGNALED,
        h.ENTITY_LOCK_REQUESTED,
        h.ENTITY_UNLOCK_SENT,
        h.ENTITY_COMPLETED,
        h.ENTITY_FAILED,
        h.ENTITY_LOCK_GRANTED,
    }
)


def _request_id(event: h.Event) -> str:
    """The request id an entity message was sent with (tenuto's own: its task id)."""
    return str(event.data.get("request_id") or event.data.get("task_id", ""))


def _entity_event(
    out: pb.HistoryEvent, event: h.Event, row: InstanceRow, requests: dict[int, str]
) -> None:
    d, t = event.data, event.type
    task_id = _task_id(event)
    entities = d.get("entities") or [""]
    if t == h.ENTITY_CALLED:
        out.eventId = task_id
        call = out.entityOperationCalled
        call.requestId, call.operation = _request_id(event), d.get("name", "")
        call.targetInstanceId.value = d.get("entity", "")
        call.parentInstanceId.value = row.instance_id
        call.parentExecutionId.value = row.execution_id
        _set(call.input, payload(event, "input"))
    elif t == h.ENTITY_SIGNALED:
        out.eventId = task_id
        signal = out.entityOperationSignaled
        signal.requestId, signal.operation = _request_id(event), d.get("name", "")
        signal.targetInstanceId.value = d.get("entity", "")
        _set(signal.input, payload(event, "input"))
        if isinstance(d.get("signal_time"), int | float):
            signal.scheduledTime.CopyFrom(timestamp(float(d["signal_time"])))
    elif t == h.ENTITY_LOCK_REQUESTED:
        out.eventId = task_id
        lock = out.entityLockRequested
        lock.criticalSectionId = _request_id(event)
        lock.lockSet.extend(entities)
        lock.parentInstanceId.value = row.instance_id
    elif t == h.ENTITY_UNLOCK_SENT:
        out.eventId = task_id
        unlock = out.entityUnlockSent
        unlock.criticalSectionId = _request_id(event)
        unlock.parentInstanceId.value = row.instance_id
        unlock.targetInstanceId.value = entities[0]
    elif t == h.ENTITY_COMPLETED:
        out.entityOperationCompleted.requestId = requests.get(task_id, str(task_id))
        _set(out.entityOperationCompleted.output, payload(event, "result"))
    elif t == h.ENTITY_FAILED:
        out.entityOperationFailed.requestId = requests.get(task_id, str(task_id))
        out.entityOperationFailed.failureDetails.CopyFrom(failure_details(d.get("failure")))
    else:
        out.entityLockGranted.criticalSectionId = requests.get(task_id, str(task_id))


def requests_of(events: Iterable[h.Event]) -> dict[int, str]:
    """The request id of each entity call and lock request among ``events``, by task id."""
    return {
        _task_id(e): _request_id(e)
        for e in events
        if e.type in (h.ENTITY_CALLED, h.ENTITY_LOCK_REQUESTED)
    }


def _set(field: wrappers_pb2.StringValue, text: str | None) -> None:
    if text is not None:
        field.value = text


def history(
    events: Iterable[h.Event],
    row: InstanceRow,
    *,
    for_replay: bool,
    earlier: Iterable[h.Event] = (),
) -> list[pb.HistoryEvent]:
    """Events in the protocol's form; ``for_replay`` leaves out what orchestrator code
    must not see (tenuto's pause records). ``earlier``: the history before ``events``
    (where the requests their entity results answer were recorded)."""
    events = list(events)
    requests = requests_of([*earlier, *events])
    out = []
    for event in events:
        if for_replay and event.type in _NOT_REPLAYED:
            continue
        converted = history_event(event, row, requests)
        if converted is not None:
            out.append(converted)
    return out


# -- actions ---------------------------------------------------------------------------


class Unsupported(Exception):
    """An action tenuto does not carry out (it fails the orchestration)."""


def actions(
    items: Sequence[pb.OrchestratorAction], instance_id: str
) -> tuple[list[Action], Outcome | None]:
    """An SDK step's actions as tenuto's, and how the execution ended, if it did.

    An action that cannot be carried out becomes a :class:`~tenuto.actions.Failed`
    outcome with a message that says why (the orchestration fails; nothing is half
    done)."""
    out: list[Action] = []
    outcome: Outcome | None = None
    try:
        for action in items:
            kind = action.WhichOneof("orchestratorActionType")
            if kind == "scheduleTask":
                task = action.scheduleTask
                out.append(
                    ScheduleActivity(
                        action.id, task.name, parse(task, "input", "an activity input"), None
                    )
                )
            elif kind == "createTimer":
                out.append(CreateTimer(action.id, epoch(action.createTimer.fireAt)))
            elif kind == "createSubOrchestration":
                sub = action.createSubOrchestration
                child = sub.instanceId or f"{instance_id}:{action.id:04x}"
                try:
                    check_instance_id(child)
                    version = check_version(optional_text(sub, "version"))
                    tags = check_tags(dict(sub.tags))
                except (TypeError, ValueError) as exc:
                    raise Unsupported(str(exc)) from None
                out.append(
                    CreateSubOrchestration(
                        action.id,
                        sub.name,
                        child,
                        parse(sub, "input", "a sub-orchestration input"),
                        version,
                        None if tags is None else dumps(tags),
                    )
                )
            elif kind == "sendEvent":
                send = action.sendEvent
                out.append(
                    SendEvent(
                        action.id,
                        send.instance.instanceId,
                        send.name,
                        parse(send, "data", "event data"),
                    )
                )
            elif kind == "completeOrchestration":
                try:
                    outcome = _completion(action.completeOrchestration)
                except ValueError as exc:
                    raise Unsupported(str(exc)) from None
            elif kind == "sendEntityMessage":
                out.append(_entity_action(action.id, action.sendEntityMessage))
            else:
                raise Unsupported(f"the action {kind!r} is not supported by tenuto")
    except (Unsupported, BadPayload) as exc:
        return out, Failed(Failure("tenuto.UnsupportedAction", str(exc)))
    except InvalidJSON as exc:  # a payload tenuto cannot store: the orchestration fails
        return out, Failed(Failure.from_exception(exc))
    return out, outcome


def _entity_action(task_id: int, message: pb.SendEntityMessageAction) -> Action:
    """An SDK's entity message as tenuto's action; its request id (or critical section
    id) is kept in the history event, where the result's conversion finds it."""
    kind = message.WhichOneof("EntityMessageType")
    try:
        if kind == "entityOperationCalled":
            call = message.entityOperationCalled
            return CallEntity(
                task_id,
                _entity(call.targetInstanceId.value),
                call.operation,
                parse(call, "input", "an entity operation input"),
                call.requestId,
            )
        if kind == "entityOperationSignaled":
            signal = message.entityOperationSignaled
            return SignalEntity(
                task_id,
                _entity(signal.targetInstanceId.value),
                signal.operation,
                parse(signal, "input", "an entity operation input"),
                optional_time(signal, "scheduledTime"),
                signal.requestId,
            )
        if kind == "entityLockRequested":
            lock = message.entityLockRequested
            ids = tuple(sorted({_entity(e) for e in lock.lockSet}))
            if not ids:
                raise Unsupported("a lock request must name at least one entity")
            return LockEntities(task_id, ids, lock.criticalSectionId)
        if kind == "entityUnlockSent":
            unlock = message.entityUnlockSent
            target = _entity(unlock.targetInstanceId.value)
            return UnlockEntities(task_id, (target,), unlock.criticalSectionId)
    except ValidationError as exc:
        raise Unsupported(str(exc)) from None
    raise Unsupported(f"the entity message {kind!r} is not supported by tenuto")


def _entity(text: str) -> str:
    return str(EntityId.parse(text))


def _completion(done: pb.CompleteOrchestrationAction) -> Outcome:
    status = done.orchestrationStatus
    if status == pb.ORCHESTRATION_STATUS_COMPLETED:
        return Completed(lenient(done, "result"))
    if status == pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW:
        carry = []
        for event in done.carryoverEvents:
            if event.HasField("eventRaised"):
                carry.append((event.eventRaised.name, lenient(event.eventRaised, "input")))
        version = check_version(optional_text(done, "newVersion"))
        return ContinuedAsNew(lenient(done, "result"), tuple(carry), version)
    if status == pb.ORCHESTRATION_STATUS_FAILED:
        if done.HasField("failureDetails"):
            return Failed(failure_of(done.failureDetails))
        return Failed(Failure("Error", done.details.value or "the orchestration failed"))
    name = pb.OrchestrationStatus.Name(status)
    return Failed(Failure("tenuto.UnsupportedAction", f"cannot end an orchestration as {name}"))
