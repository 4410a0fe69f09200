"""The ``TaskHubSidecarService`` of the Durable Task protocol, on tenuto's store.

Client calls are tenuto's own operations (:mod:`tenuto._control`), run in one
transaction each: an instance started here is an ordinary tenuto instance, and
``SuspendInstance`` is tenuto's pause (a ``PAUSED`` status with reason and actor).
Worker calls (``GetWorkItems``, ``Complete*``, ``Abandon*``) go to the
:class:`~tenuto.grpc.dispatch.Dispatcher`.

Errors: an unknown instance is ``NOT_FOUND``, a bad request ``INVALID_ARGUMENT``, an
operation the instance's state forbids ``FAILED_PRECONDITION``, a taken id
``ALREADY_EXISTS``; durable entities are ``UNIMPLEMENTED``. Nothing a request carries
crashes the server: an unexpected error is logged and answered ``INTERNAL``.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import durabletask.internal.orchestrator_service_pb2 as pb
import durabletask.internal.orchestrator_service_pb2_grpc as stubs
import grpc
from google.protobuf import empty_pb2, wrappers_pb2

from .. import _control
from .. import history as h
from .._json import dumps, loads
from ..app import check_name
from ..client import (
    MAX_PAGE,
    check_instance_id,
    check_tags,
    check_version,
    decode_cursor,
    encode_cursor,
)
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import (
    InstanceExists,
    InstanceFinished,
    InstanceNotFinished,
    InstanceNotFound,
    InvalidCursor,
    ValidationError,
)
from ..status import TERMINAL, Status
from ..store.base import HistoryRow, InstanceRow, Reader, Selection, Store, Tx
from . import convert
from .auth import ACTOR, TokenAuth
from .convert import EXECUTION_REWOUND
from .dispatch import Dispatcher

log = logging.getLogger("tenuto.grpc")

F = TypeVar("F", bound=Callable[..., Any])

_ENTITIES = (
    "durable entities are not supported by tenuto yet; run orchestrations and activities "
    "only (see docs/durable-task-sdks.md)"
)
#: A worker stream with nothing to send says it is alive this often (seconds): SDK
#: workers reconnect after a silence of 120 s.
HEALTH_PING = 30.0


def _abort(context: grpc.ServicerContext, exc: BaseException, store: Store) -> None:
    code, message = _status_of(exc, store)
    if code is grpc.StatusCode.INTERNAL:
        log.error("gRPC request failed unexpectedly", exc_info=exc)
    context.abort(code, message)


class _Deadline(Exception):
    """The caller's deadline passed."""


def _status_of(exc: BaseException, store: Store) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, _Deadline):
        return grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)
    if isinstance(exc, InstanceNotFound):
        return grpc.StatusCode.NOT_FOUND, str(exc)
    if isinstance(exc, InstanceExists):
        return grpc.StatusCode.ALREADY_EXISTS, str(exc)
    if isinstance(exc, InstanceFinished | InstanceNotFinished):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, ValidationError):  # other exceptions are bugs: INTERNAL
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    outage = store.outage(exc)
    if outage is not None:
        return grpc.StatusCode.UNAVAILABLE, outage
    return (
        grpc.StatusCode.INTERNAL,
        f"internal error (a bug in tenuto, not in the request): {type(exc).__name__}; "
        "see the server log",
    )


def _rpc(fn: F) -> F:
    """Answer a failed call with a gRPC status instead of an exception."""

    @functools.wraps(fn)
    def call(self: SidecarService, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except Exception as exc:
            if type(exc) is Exception and not exc.args:
                raise  # context.abort() was called: the status is set
            if isinstance(exc, grpc.RpcError):
                raise
            _abort(context, exc, self.store)
            raise  # not reached: abort raises

    return call  # type: ignore[return-value]


def _instance_id(value: str) -> str:
    if not value:
        raise ValidationError("instanceId is required")
    return check_instance_id(value)


def _known_id(value: str) -> str:
    try:
        return check_instance_id(value)
    except (TypeError, ValueError):
        raise InstanceNotFound(value) from None


def _optional_text(message: Any, field: str) -> str | None:
    """The text of an optional ``StringValue`` field, ``None`` when it is not set."""
    return str(getattr(message, field).value) if message.HasField(field) else None


def _reason_text(message: Any, field: str) -> str | None:
    """A plain-text reason from an optional ``StringValue`` (JSON strings unwrapped)."""
    if not message.HasField(field):
        return None
    raw = str(getattr(message, field).value)
    try:
        value = loads(raw)
    except ValueError:
        return raw or None
    if value is None:
        return None
    return value if isinstance(value, str) else raw


def _statuses(values: Sequence[int]) -> tuple[Status, ...]:
    out = []
    for v in values:
        if v == pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW:
            out.append(Status.RUNNING)  # tenuto never rests in that state
        elif v in convert.STATUS_FROM_PB:
            out.append(convert.STATUS_FROM_PB[v])
        elif v == pb.ORCHESTRATION_STATUS_CANCELED:
            continue  # tenuto has no canceled state: nothing matches it
        else:
            raise ValidationError(f"unknown runtime status {v}")
    return tuple(dict.fromkeys(out))


def _instance_key(row: InstanceRow) -> str:
    """ListInstanceIds' ``lastInstanceKey``: the last instance id of the page, as the
    protocol has it, behind its creation time (where the next page resumes)."""
    return f"{row.created_at!r}|{row.instance_id}"


def _decode_instance_key(key: str) -> tuple[float, str]:
    created, sep, iid = key.partition("|")
    try:
        if not sep or not iid:
            raise ValueError
        return float(created), iid
    except ValueError:
        raise InvalidCursor(
            f"invalid lastInstanceKey {key[:40]!r}: pass back the key of a previous page"
        ) from None


def state(row: InstanceRow, payloads: bool) -> pb.OrchestrationState:
    """An instance as the protocol's ``OrchestrationState``."""
    out = pb.OrchestrationState(
        instanceId=row.instance_id,
        name=row.name,
        orchestrationStatus=convert.STATUS_TO_PB[row.status],
        createdTimestamp=convert.timestamp(row.created_at),
        lastUpdatedTimestamp=convert.timestamp(row.updated_at),
        executionId=wrappers_pb2.StringValue(value=row.execution_id),
    )
    if row.version is not None:
        out.version.value = row.version
    if row.tags is not None:
        out.tags.update(loads(row.tags))
    if row.start_at is not None:
        out.scheduledStartTimestamp.CopyFrom(convert.timestamp(row.start_at))
    if row.completed_at is not None:
        out.completedTimestamp.CopyFrom(convert.timestamp(row.completed_at))
    if row.parent_instance_id:
        out.parentInstanceId.value = row.parent_instance_id
    if payloads:
        if row.input is not None and row.input != "null":
            out.input.value = row.input
        if row.output is not None and row.output != "null":
            out.output.value = row.output
    if row.custom_status is not None and row.custom_status != "null":
        out.customStatus.value = row.custom_status
    if row.status is Status.FAILED and row.failure is not None:
        out.failureDetails.CopyFrom(convert.failure_details(loads(row.failure)))
    return out


class SidecarService(stubs.TaskHubSidecarServiceServicer):
    """Answers the Durable Task protocol from a tenuto store."""

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        *,
        clock: Clock = SYSTEM_CLOCK,
        auth: TokenAuth | None = None,
    ) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.clock = clock
        #: Who makes a call (pauses, resumes and terminations record it as ``by``).
        self.auth = auth or TokenAuth()

    # -- client calls ------------------------------------------------------------------

    def Hello(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    @_rpc
    def StartInstance(
        self, request: pb.CreateInstanceRequest, context: grpc.ServicerContext
    ) -> pb.CreateInstanceResponse:
        name = check_name(request.name, "orchestrator name")
        iid = _instance_id(request.instanceId) if request.instanceId else uuid.uuid4().hex
        value = convert.parse(request, "input", "the orchestration input")
        start_at = (
            convert.epoch(request.scheduledStartTimestamp)
            if request.HasField("scheduledStartTimestamp")
            else None
        )
        replaceable = _statuses(request.orchestrationIdReusePolicy.replaceableStatus)
        text = None if value is None else dumps(value)
        version = check_version(convert.optional_text(request, "version"))
        tags = check_tags(dict(request.tags))
        actor = self.auth.actor(context)

        def start(tx: Tx) -> None:
            now = self.clock.now()
            if replaceable:
                existing = tx.lock_instances([iid])
                if existing and existing[0].status in replaceable:
                    if not existing[0].status.is_terminal:
                        _control.terminate(
                            tx, [iid], reason="replaced by a new start", by=actor, now=now
                        )
                    _control.purge(tx, [iid])
            _control.start(
                tx,
                name=name,
                inputs=[(iid, text)],  # type: ignore[list-item]
                start_at=start_at,
                now=now,
                version=version,
                tags=tags,
            )

        self.store.run(start)
        self.dispatcher.changed()
        return pb.CreateInstanceResponse(instanceId=iid)

    def _row(self, instance_id: str) -> InstanceRow | None:
        try:
            iid = check_instance_id(instance_id)
        except (TypeError, ValueError):
            return None
        return self.store.read(lambda r: r.get_instance(iid))

    @_rpc
    def GetInstance(
        self, request: pb.GetInstanceRequest, context: grpc.ServicerContext
    ) -> pb.GetInstanceResponse:
        row = self._row(request.instanceId)
        if row is None:
            return pb.GetInstanceResponse(exists=False)
        return pb.GetInstanceResponse(
            exists=True, orchestrationState=state(row, request.getInputsAndOutputs)
        )

    def _wait(
        self,
        request: pb.GetInstanceRequest,
        context: grpc.ServicerContext,
        done: Callable[[InstanceRow], bool],
        what: str,
    ) -> pb.GetInstanceResponse:
        remaining = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
        interval = 0.01
        while True:
            seen = self.dispatcher.generation
            row = self._row(request.instanceId)
            if row is None:
                return pb.GetInstanceResponse(exists=False)
            if done(row):
                return pb.GetInstanceResponse(
                    exists=True, orchestrationState=state(row, request.getInputsAndOutputs)
                )
            left = 3600.0 if deadline is None else deadline - time.monotonic()
            if left <= 0 or not context.is_active():
                raise _Deadline(f"instance {request.instanceId!r} did not {what} in time")
            # Woken by commits; polled as well for changes made by other processes.
            self.dispatcher.wait(seen, min(left, interval))
            interval = min(interval * 2, 0.25)

    @_rpc
    def WaitForInstanceStart(
        self, request: pb.GetInstanceRequest, context: grpc.ServicerContext
    ) -> pb.GetInstanceResponse:
        return self._wait(request, context, lambda r: r.status is not Status.PENDING, "start")

    @_rpc
    def WaitForInstanceCompletion(
        self, request: pb.GetInstanceRequest, context: grpc.ServicerContext
    ) -> pb.GetInstanceResponse:
        return self._wait(request, context, lambda r: r.status.is_terminal, "complete")

    @_rpc
    def RaiseEvent(
        self, request: pb.RaiseEventRequest, context: grpc.ServicerContext
    ) -> pb.RaiseEventResponse:
        iid = _known_id(request.instanceId)
        name = check_name(request.name, "event name")
        data = convert.parse(request, "input", "the event data")
        self.store.run(lambda tx: _control.raise_event(tx, iid, name, data, self.clock.now()))
        self.dispatcher.changed()
        return pb.RaiseEventResponse()

    @_rpc
    def TerminateInstance(
        self, request: pb.TerminateRequest, context: grpc.ServicerContext
    ) -> pb.TerminateResponse:
        iid = _known_id(request.instanceId)
        reason = _reason_text(request, "output")
        output = convert.lenient(request, "output")
        actor = self.auth.actor(context)
        self.store.run(
            lambda tx: _control.terminate(
                tx,
                [iid],
                reason=reason,
                by=actor,
                now=self.clock.now(),
                strict=True,
                recursive=request.recursive,
                output=None if output is None else output.text,
            )
        )
        self.dispatcher.changed()
        return pb.TerminateResponse()

    @_rpc
    def SuspendInstance(
        self, request: pb.SuspendRequest, context: grpc.ServicerContext
    ) -> pb.SuspendResponse:
        iid = _known_id(request.instanceId)
        reason = _optional_text(request, "reason")
        actor = self.auth.actor(context)
        self.store.run(
            lambda tx: _control.pause(
                tx,
                [iid],
                reason=reason,
                by=actor,
                resume_at=None,
                now=self.clock.now(),
                strict=True,
            )
        )
        return pb.SuspendResponse()

    @_rpc
    def ResumeInstance(
        self, request: pb.ResumeRequest, context: grpc.ServicerContext
    ) -> pb.ResumeResponse:
        iid = _known_id(request.instanceId)
        reason = _optional_text(request, "reason")
        actor = self.auth.actor(context)
        self.store.run(
            lambda tx: _control.resume(
                tx, [iid], reason=reason, by=actor, now=self.clock.now(), strict=True
            )
        )
        self.dispatcher.changed()
        return pb.ResumeResponse()

    @_rpc
    def PurgeInstances(
        self, request: pb.PurgeInstancesRequest, context: grpc.ServicerContext
    ) -> pb.PurgeInstancesResponse:
        recursive = request.recursive
        flt: Selection | None = None
        ids: list[str] = []
        if request.instanceId:
            ids = [_known_id(request.instanceId)]
        elif request.HasField("instanceBatch"):
            ids = [_known_id(i) for i in request.instanceBatch.instanceIds]
        elif request.HasField("purgeInstanceFilter"):
            pf = request.purgeInstanceFilter
            flt = Selection(
                statuses=tuple(s for s in _statuses(pf.runtimeStatus) if s.is_terminal) or TERMINAL,
                created_from=convert.optional_time(pf, "createdTimeFrom"),
                created_to=convert.optional_time(pf, "createdTimeTo"),
            )
        else:
            raise ValidationError("give an instanceId, an instanceBatch or a purgeInstanceFilter")

        def purge(tx: Tx) -> int:
            targets = list(ids) if flt is None else tx.select_ids(flt)
            if recursive and targets:
                level = targets
                while level:
                    level = [c for c in tx.children(level, TERMINAL) if c not in targets]
                    targets.extend(level)
            return _control.purge(tx, targets) if targets else 0

        count = self.store.run(purge)
        return pb.PurgeInstancesResponse(
            deletedInstanceCount=count, isComplete=wrappers_pb2.BoolValue(value=True)
        )

    @_rpc
    def RestartInstance(
        self, request: pb.RestartInstanceRequest, context: grpc.ServicerContext
    ) -> pb.RestartInstanceResponse:
        iid = _known_id(request.instanceId)
        new_id = uuid.uuid4().hex if request.restartWithNewInstanceId else iid

        def restart(tx: Tx) -> None:
            rows = tx.lock_instances([iid])
            if not rows:
                raise InstanceNotFound(iid)
            row = rows[0]
            if not row.status.is_terminal:
                raise InstanceNotFinished(iid, row.status)
            if new_id == iid:
                _control.purge(tx, [iid])
            _control.start(
                tx,
                name=row.name,
                inputs=[(new_id, row.input)],  # type: ignore[list-item]
                start_at=None,
                now=self.clock.now(),
                version=row.version,
                tags=None if row.tags is None else loads(row.tags),
            )

        self.store.run(restart)
        self.dispatcher.changed()
        return pb.RestartInstanceResponse(instanceId=new_id)

    @_rpc
    def RewindInstance(
        self, request: pb.RewindInstanceRequest, context: grpc.ServicerContext
    ) -> pb.RewindInstanceResponse:
        iid = _known_id(request.instanceId)
        reason = _optional_text(request, "reason")
        actor = self.auth.actor(context)
        self.store.run(lambda tx: rewind(tx, iid, reason, self.clock.now(), top=True, by=actor))
        self.dispatcher.changed()
        return pb.RewindInstanceResponse()

    @_rpc
    def QueryInstances(
        self, request: pb.QueryInstancesRequest, context: grpc.ServicerContext
    ) -> pb.QueryInstancesResponse:
        q = request.query
        flt = Selection(
            statuses=_statuses(q.runtimeStatus),
            created_from=convert.optional_time(q, "createdTimeFrom"),
            created_to=convert.optional_time(q, "createdTimeTo"),
            id_prefix=q.instanceIdPrefix.value or None,
        )
        limit = min(q.maxInstanceCount or 100, MAX_PAGE)
        after = (
            decode_cursor(q.continuationToken.value)
            if q.HasField("continuationToken") and q.continuationToken.value
            else None
        )
        rows = self.store.read(lambda r: r.query(flt, limit + 1, after))
        out = pb.QueryInstancesResponse(
            orchestrationState=[state(r, q.fetchInputsAndOutputs) for r in rows[:limit]]
        )
        if len(rows) > limit:
            out.continuationToken.value = encode_cursor(rows[limit - 1])
        return out

    @_rpc
    def ListInstanceIds(
        self, request: pb.ListInstanceIdsRequest, context: grpc.ServicerContext
    ) -> pb.ListInstanceIdsResponse:
        statuses = tuple(s for s in _statuses(request.runtimeStatus) if s.is_terminal)
        flt = Selection(statuses=statuses or TERMINAL)
        lo = (
            convert.epoch(request.completedTimeFrom)
            if request.HasField("completedTimeFrom")
            else None
        )
        hi = convert.epoch(request.completedTimeTo) if request.HasField("completedTimeTo") else None
        size = min(request.pageSize or 100, MAX_PAGE)
        after = (
            _decode_instance_key(request.lastInstanceKey.value)
            if request.HasField("lastInstanceKey") and request.lastInstanceKey.value
            else None
        )

        def scan(r: Reader) -> tuple[list[str], str | None]:
            found: list[str] = []
            cursor = after
            while True:
                rows = r.query(flt, 500, cursor)
                for i, row in enumerate(rows):
                    done = row.completed_at
                    if done is None or (lo is not None and done < lo):
                        continue
                    if hi is not None and done >= hi:
                        continue
                    found.append(row.instance_id)
                    if len(found) == size:
                        more = i + 1 < len(rows) or len(rows) == 500
                        return found, _instance_key(row) if more else None
                if len(rows) < 500:
                    return found, None
                cursor = (rows[-1].created_at, rows[-1].instance_id)

        ids, token = self.store.read(scan)
        out = pb.ListInstanceIdsResponse(instanceIds=ids)
        if token is not None:
            out.lastInstanceKey.value = token
        return out

    @_rpc
    def StreamInstanceHistory(
        self, request: pb.StreamInstanceHistoryRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.HistoryChunk]:
        iid = _known_id(request.instanceId)

        def read(r: Reader) -> tuple[InstanceRow | None, list[h.Event]]:
            row = r.get_instance(iid)
            return row, ([] if row is None else r.load_history(iid))

        row, events = self.store.read(read)
        if row is None:
            raise InstanceNotFound(iid)
        converted = convert.history(events, row, for_replay=request.forWorkItemProcessing)
        chunks = [
            pb.HistoryChunk(events=converted[i : i + 100]) for i in range(0, len(converted), 100)
        ]
        return iter(chunks)

    # -- worker calls ------------------------------------------------------------------

    def GetWorkItems(
        self, request: pb.GetWorkItemsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WorkItem]:
        dispatcher = self.dispatcher
        try:
            stream = dispatcher.open(request)
        except Exception as exc:
            _abort(context, exc, self.store)
            return
        last_sent = time.monotonic()
        backoff = 0.0
        try:
            while context.is_active() and not dispatcher.stopping:
                seen = dispatcher.generation
                try:
                    items, wait = dispatcher.claim(stream)
                    backoff = 0.0
                except Exception as exc:
                    backoff = min(max(backoff * 2, 0.1), 5.0)
                    if self.store.outage(exc) is None:
                        log.exception("claiming work for an SDK worker failed")
                    dispatcher.wait(seen, backoff)
                    continue
                if items:
                    yield from items
                    last_sent = time.monotonic()
                    continue
                if time.monotonic() - last_sent >= HEALTH_PING:
                    yield pb.WorkItem(healthPing=pb.HealthPing())
                    last_sent = time.monotonic()
                dispatcher.wait(seen, min(wait, 0.5))
        finally:
            dispatcher.close(stream)

    @_rpc
    def CompleteOrchestratorTask(
        self, request: pb.OrchestratorResponse, context: grpc.ServicerContext
    ) -> pb.CompleteTaskResponse:
        if request.isPartial:
            raise ValidationError("chunked orchestrator responses are not supported")
        self.dispatcher.complete_orchestration(request)
        return pb.CompleteTaskResponse()

    @_rpc
    def CompleteActivityTask(
        self, request: pb.ActivityResponse, context: grpc.ServicerContext
    ) -> pb.CompleteTaskResponse:
        self.dispatcher.complete_activity(request)
        return pb.CompleteTaskResponse()

    @_rpc
    def AbandonTaskOrchestratorWorkItem(
        self, request: pb.AbandonOrchestrationTaskRequest, context: grpc.ServicerContext
    ) -> pb.AbandonOrchestrationTaskResponse:
        self.dispatcher.abandon_orchestration(request.completionToken)
        return pb.AbandonOrchestrationTaskResponse()

    @_rpc
    def AbandonTaskActivityWorkItem(
        self, request: pb.AbandonActivityTaskRequest, context: grpc.ServicerContext
    ) -> pb.AbandonActivityTaskResponse:
        self.dispatcher.abandon_activity(request.completionToken)
        return pb.AbandonActivityTaskResponse()

    def CreateTaskHub(
        self, request: pb.CreateTaskHubRequest, context: grpc.ServicerContext
    ) -> pb.CreateTaskHubResponse:
        return pb.CreateTaskHubResponse()  # the store is created on first use

    def DeleteTaskHub(self, request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "deleting the task hub is not offered over the protocol; purge instances instead",
        )

    # -- entities ----------------------------------------------------------------------

    def _no_entities(self, request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, _ENTITIES)

    SignalEntity = _no_entities
    GetEntity = _no_entities
    QueryEntities = _no_entities
    CleanEntityStorage = _no_entities
    CompleteEntityTask = _no_entities
    AbandonTaskEntityWorkItem = _no_entities


def rewind(
    tx: Tx, instance_id: str, reason: str | None, now: float, *, top: bool, by: str = ACTOR
) -> None:
    """Rewind a FAILED instance: forget its failure, the failed activity calls and the
    failed sub-orchestration results, and run it again from there (failed
    sub-orchestrations are rewound too; activities that succeeded do not run again).

    The rules are those of the Durable Task SDKs' rewind (an activity called with a
    retry policy cannot be rewound: its retry timers stay in the history)."""
    rows = tx.lock_instances([instance_id])
    if not rows:
        raise InstanceNotFound(instance_id)
    row = rows[0]
    if row.status is not Status.FAILED:
        if not top:
            return
        if row.status.is_terminal:
            raise InstanceFinished(instance_id, row.status, "rewind (it did not fail)")
        raise InstanceNotFinished(instance_id, row.status)
    events = tx.load_history(instance_id)
    failed_tasks = {e.data.get("task_id") for e in events if e.type == h.TASK_FAILED}
    failed_subs = {e.data.get("task_id") for e in events if e.type == h.SUB_FAILED}
    kept: list[h.Event] = []
    for e in events:
        if e.type in (h.TASK_FAILED, h.SUB_FAILED, h.EXECUTION_COMPLETED):
            continue
        if e.type == h.TASK_SCHEDULED and e.data.get("task_id") in failed_tasks:
            continue
        if e.type == h.SUB_CREATED and e.data.get("task_id") in failed_subs:
            child = str(e.data.get("instance_id"))
            found = tx.lock_instances([child])
            if not found:
                continue  # purged: created anew when the replay calls it again
            if found[0].status is Status.FAILED:
                rewind(tx, child, reason, now, top=False, by=by)
        kept.append(e)
    kept.append(h.Event(EXECUTION_REWOUND, now, {"reason": reason, "by": by}))
    tx.delete_history(instance_id)
    tx.append_history(HistoryRow(instance_id, i, e) for i, e in enumerate(kept))
    tx.update_instance(
        instance_id,
        {
            "status": Status.RUNNING,
            "failure": None,
            "output": None,
            "completed_at": None,
            "history_len": len(kept),
            "updated_at": now,
            "next_due": now,
            "lease": None,
            "lease_until": None,
            "claims": 0,
        },
    )
    tx.wake()
    _control.track_each(tx, "rewound", [instance_id], reason=reason, by=by)
