"""The ``TaskHubSidecarService`` of the Durable Task protocol, on tenuto's store.

Client calls that change something are :class:`~tenuto.Client` calls, as the REST API's
are: an instance started here is an ordinary tenuto instance, ``SuspendInstance`` is
tenuto's pause (a ``PAUSED`` status with reason and actor), ``RewindInstance`` is
:meth:`~tenuto.Client.rewind`. Reads answer from the store directly: the protocol wants
the stored JSON text byte for byte, and the execution id. Worker calls (``GetWorkItems``,
``Complete*``, ``Abandon*``) go to the :class:`~tenuto.grpc.dispatch.Dispatcher`.

Errors: an unknown instance is ``NOT_FOUND``, a bad request ``INVALID_ARGUMENT``, an
operation the instance's state forbids ``FAILED_PRECONDITION``, a taken id
``ALREADY_EXISTS``. Entities: the client calls are served by :mod:`.entities`, entity
work items by :mod:`.entity_dispatch`; SDK orchestrations cannot call entities yet.
Nothing a request carries crashes the server: an unexpected error is logged and
answered ``INTERNAL``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import durabletask.internal.orchestrator_service_pb2 as pb
import durabletask.internal.orchestrator_service_pb2_grpc as stubs
import grpc
from google.protobuf import empty_pb2, wrappers_pb2

from .. import history as h
from .. import tracing
from .._checks import MAX_REASON
from .._ids import check_instance_id
from .._json import is_text, loads
from ..client import MAX_PAGE, Client, decode_cursor, encode_cursor
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import (
    InstanceExists,
    InstanceFinished,
    InstanceNotFinished,
    InstanceNotFound,
    InvalidCursor,
    ValidationError,
)
from ..status import TERMINAL, Status, from_timestamp
from ..store.base import InstanceRow, Reader, Selection, Store
from . import convert, entities
from .auth import ACTOR, TokenAuth
from .dispatch import Dispatcher

log = logging.getLogger("tenuto.grpc")

F = TypeVar("F", bound=Callable[..., Any])

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


def _get(r: Reader, instance_id: str) -> InstanceRow | None:
    """The stored instance; ``None`` if unknown (an id that is not valid never is)."""
    try:
        check_instance_id(instance_id)
    except (TypeError, ValueError):
        return None
    return r.get_instance(instance_id)


def _optional_text(message: Any, field: str) -> str | None:
    """The text of an optional ``StringValue`` field, ``None`` when it is not set."""
    return str(getattr(message, field).value) if message.HasField(field) else None


def _reason_text(message: Any, field: str) -> str | None:
    """A plain-text reason from an optional ``StringValue`` (JSON strings unwrapped), or
    ``None`` if the text could not be a reason (it is kept as the output anyway)."""
    if not message.HasField(field):
        return None
    raw = str(getattr(message, field).value)
    try:
        value = loads(raw)
    except ValueError:
        value = raw
    text = value if isinstance(value, str) or value is None else raw
    if not text or len(text) > MAX_REASON or "\x00" in text or not is_text(text):
        return None
    return text


def _statuses(values: Sequence[int]) -> tuple[Status, ...] | None:
    """The tenuto statuses a filter's runtime statuses name: ``()`` for none (any
    status), ``None`` when it names only statuses tenuto never has (nothing matches)."""
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
    if values and not out:
        return None
    return tuple(dict.fromkeys(out))


def _finished(values: Sequence[int]) -> tuple[Status, ...] | None:
    """The final statuses a filter's runtime statuses name (every one if it names none;
    ``None`` if it names only others: nothing matches)."""
    statuses = _statuses(values)
    if statuses == ():
        return TERMINAL
    finished = tuple(s for s in statuses or () if s.is_terminal)
    return finished or None


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
        # Any orchestrator name may be started: an SDK worker that serves it may connect
        # later, as Durable Task clients expect.
        self.client = Client(store=store, clock=clock, actor=ACTOR, check_names=False)

    # -- client calls ------------------------------------------------------------------

    def Hello(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    @_rpc
    def StartInstance(
        self, request: pb.CreateInstanceRequest, context: grpc.ServicerContext
    ) -> pb.CreateInstanceResponse:
        start_at = convert.optional_time(request, "scheduledStartTimestamp")
        # The SDK client's span: the instance's spans join its trace.
        with tracing.incoming(request.parentTraceContext.traceParent):
            iid = self._start(request, start_at, context)
        self.dispatcher.changed()
        return pb.CreateInstanceResponse(instanceId=iid)

    def _start(
        self,
        request: pb.CreateInstanceRequest,
        start_at: float | None,
        context: grpc.ServicerContext,
    ) -> str:
        return self.client.start(
            request.name,
            convert.parse(request, "input", "the orchestration input"),
            instance_id=request.instanceId or None,
            start_at=None if start_at is None else from_timestamp(start_at),
            version=convert.optional_text(request, "version"),
            tags=dict(request.tags),
            reuse=_statuses(request.orchestrationIdReusePolicy.replaceableStatus) or (),
            by=self.auth.actor(context),
        )

    def _row(self, instance_id: str) -> InstanceRow | None:
        return self.store.read(lambda r: _get(r, instance_id))

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
        data = convert.parse(request, "input", "the event data")
        self.client.raise_event(request.instanceId, request.name, data)
        self.dispatcher.changed()
        return pb.RaiseEventResponse()

    @_rpc
    def TerminateInstance(
        self, request: pb.TerminateRequest, context: grpc.ServicerContext
    ) -> pb.TerminateResponse:
        self.client.terminate(
            request.instanceId,
            _reason_text(request, "output"),
            by=self.auth.actor(context),
            recursive=request.recursive,
            output=convert.lenient(request, "output"),
        )
        self.dispatcher.changed()
        return pb.TerminateResponse()

    @_rpc
    def SuspendInstance(
        self, request: pb.SuspendRequest, context: grpc.ServicerContext
    ) -> pb.SuspendResponse:
        reason = _optional_text(request, "reason")
        self.client.pause(request.instanceId, reason, by=self.auth.actor(context))
        return pb.SuspendResponse()

    @_rpc
    def ResumeInstance(
        self, request: pb.ResumeRequest, context: grpc.ServicerContext
    ) -> pb.ResumeResponse:
        reason = _optional_text(request, "reason")
        self.client.resume(request.instanceId, reason, by=self.auth.actor(context))
        self.dispatcher.changed()
        return pb.ResumeResponse()

    @_rpc
    def PurgeInstances(
        self, request: pb.PurgeInstancesRequest, context: grpc.ServicerContext
    ) -> pb.PurgeInstancesResponse:
        if request.instanceId:
            count = self.client.purge_many(
                instance_ids=[request.instanceId], recursive=request.recursive
            )
        elif request.HasField("instanceBatch"):
            count = self.client.purge_many(
                instance_ids=request.instanceBatch.instanceIds, recursive=request.recursive
            )
        elif request.HasField("purgeInstanceFilter"):
            pf = request.purgeInstanceFilter
            statuses = _finished(pf.runtimeStatus)
            start, end = (
                convert.optional_time(pf, "createdTimeFrom"),
                convert.optional_time(pf, "createdTimeTo"),
            )
            count = (
                0
                if statuses is None
                else self.client.purge_many(
                    status=statuses,
                    created_from=None if start is None else from_timestamp(start),
                    created_to=None if end is None else from_timestamp(end),
                    recursive=request.recursive,
                )
            )
        else:
            raise ValidationError("give an instanceId, an instanceBatch or a purgeInstanceFilter")
        return pb.PurgeInstancesResponse(
            deletedInstanceCount=count, isComplete=wrappers_pb2.BoolValue(value=True)
        )

    @_rpc
    def RestartInstance(
        self, request: pb.RestartInstanceRequest, context: grpc.ServicerContext
    ) -> pb.RestartInstanceResponse:
        iid = self.client.restart(request.instanceId, request.restartWithNewInstanceId)
        self.dispatcher.changed()
        return pb.RestartInstanceResponse(instanceId=iid)

    @_rpc
    def RewindInstance(
        self, request: pb.RewindInstanceRequest, context: grpc.ServicerContext
    ) -> pb.RewindInstanceResponse:
        reason = _optional_text(request, "reason")
        self.client.rewind(request.instanceId, reason, by=self.auth.actor(context))
        self.dispatcher.changed()
        return pb.RewindInstanceResponse()

    @_rpc
    def QueryInstances(
        self, request: pb.QueryInstancesRequest, context: grpc.ServicerContext
    ) -> pb.QueryInstancesResponse:
        q = request.query
        statuses = _statuses(q.runtimeStatus)
        if statuses is None:
            return pb.QueryInstancesResponse()
        flt = Selection(
            statuses=statuses,
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
        statuses = _finished(request.runtimeStatus)
        if statuses is None:
            return pb.ListInstanceIdsResponse()
        flt = Selection(statuses=statuses)
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
        iid = request.instanceId

        def read(r: Reader) -> tuple[InstanceRow | None, list[h.Event]]:
            row = _get(r, iid)
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
            stream = dispatcher.open(request, peer=context.peer())
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

    @_rpc
    def SignalEntity(
        self, request: pb.SignalEntityRequest, context: grpc.ServicerContext
    ) -> pb.SignalEntityResponse:
        return entities.signal(self.client, request)

    @_rpc
    def GetEntity(
        self, request: pb.GetEntityRequest, context: grpc.ServicerContext
    ) -> pb.GetEntityResponse:
        return entities.get(self.client, request)

    @_rpc
    def QueryEntities(
        self, request: pb.QueryEntitiesRequest, context: grpc.ServicerContext
    ) -> pb.QueryEntitiesResponse:
        return entities.query(self.client, request)

    @_rpc
    def CleanEntityStorage(
        self, request: pb.CleanEntityStorageRequest, context: grpc.ServicerContext
    ) -> pb.CleanEntityStorageResponse:
        return entities.clean(self.client, request)

    @_rpc
    def CompleteEntityTask(
        self, request: pb.EntityBatchResult, context: grpc.ServicerContext
    ) -> pb.CompleteTaskResponse:
        self.dispatcher.entities.complete(request)
        self.dispatcher.changed()
        return pb.CompleteTaskResponse()

    @_rpc
    def AbandonTaskEntityWorkItem(
        self, request: pb.AbandonEntityTaskRequest, context: grpc.ServicerContext
    ) -> pb.AbandonEntityTaskResponse:
        self.dispatcher.entities.abandon(request.completionToken)
        return pb.AbandonEntityTaskResponse()
