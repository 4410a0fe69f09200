"""tenuto's own REST API, under ``/api/``: every client operation, bulk ones included."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from ..client import MAX_PAGE, Client
from ..filters import Filter
from ..status import Status
from .common import JSONRoute, actor, get_client
from .models import (
    BulkPauseRequest,
    BulkResumeRequest,
    BulkTerminateRequest,
    ChangedModel,
    CountModel,
    Error,
    EventModel,
    FilterModel,
    HistoryModel,
    InstanceModel,
    PageModel,
    PauseRequest,
    RestartRequest,
    ResumeRequest,
    RewindRequest,
    StandingPauseModel,
    StandingPausesModel,
    StartRequest,
    StatsModel,
    StatusName,
    TerminateRequest,
    TypeChangedModel,
    TypePauseRequest,
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Error, "description": text}
    for code, text in [
        (400, "Malformed request (the body is not JSON)."),
        (401, "Missing or wrong bearer token."),
        (413, "Request body too large."),
        (422, "Invalid values."),
        (503, "The database is unreachable or locked; retry (see Retry-After)."),
    ]
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Error, "description": "Unknown instance."}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Error, "description": "The instance's state forbids it (finished)."}
}

router = APIRouter(prefix="/api", tags=["instances"], responses=_ERRORS, route_class=JSONRoute)
ClientDep = Annotated[Client, Depends(get_client)]
InstanceId = Annotated[str, Path(min_length=1, max_length=256, description="The instance id.")]
MAX_WAIT = 60.0


@router.post(
    "/instances",
    status_code=201,
    response_model=InstanceModel,
    responses={409: {"model": Error, "description": "The id is taken."}},
)
def start(body: StartRequest, client: ClientDep, response: Response) -> InstanceModel:
    """Start an orchestration."""
    iid = client.start(
        body.name,
        body.input,
        instance_id=body.instance_id,
        start_at=body.start_at,
        version=body.version,
        tags=body.tags,
        priority=body.priority,
    )
    response.headers["Location"] = f"/api/instances/{quote(iid, safe='')}"
    return InstanceModel.of(client.status(iid))


def _filter(
    status: Annotated[list[StatusName] | None, Query(description="Repeat for several.")] = None,
    name: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    id_prefix: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
) -> Filter:
    """The instance filter of a query string (every given condition must hold)."""
    return Filter(
        status=status,
        name=name,
        created_from=created_from,
        created_to=created_to,
        id_prefix=id_prefix,
    )


FilterDep = Annotated[Filter, Depends(_filter)]


@router.get("/instances", response_model=PageModel)
def query(
    client: ClientDep,
    flt: FilterDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> PageModel:
    """Instances matching every given filter, newest first, a page at a time."""
    page = client.query(flt, limit=limit, cursor=cursor)
    return PageModel(items=[InstanceModel.of(s) for s in page.items], next_cursor=page.next_cursor)


@router.get("/instances/{instance_id}", response_model=InstanceModel, responses=_NOT_FOUND)
def status(
    instance_id: InstanceId,
    client: ClientDep,
    wait: Annotated[
        float,
        Query(ge=0, le=MAX_WAIT, description="Wait up to this many seconds for it to finish."),
    ] = 0,
) -> InstanceModel:
    """An instance's status (optionally after waiting for it to finish)."""
    st = client.status(instance_id)
    deadline = time.monotonic() + wait
    if wait and not st.is_terminal:
        from ..errors import WaitTimeout

        try:
            st = client.wait(instance_id, timeout=max(deadline - time.monotonic(), 0))
        except WaitTimeout:
            st = client.status(instance_id)
    # A PENDING instance may wait forever for a worker: say so (a cheap check, only then).
    warnings = None
    if st.runtime_status is Status.PENDING:
        warnings = list(client.pending_work(instance_id).warnings)
    return InstanceModel.of(st, warnings)


@router.get("/instances/{instance_id}/history", response_model=HistoryModel, responses=_NOT_FOUND)
def history(instance_id: InstanceId, client: ClientDep) -> HistoryModel:
    """The instance's history, oldest event first."""
    return HistoryModel(
        instance_id=instance_id, events=[EventModel.of(e) for e in client.history(instance_id)]
    )


@router.post(
    "/instances/{instance_id}/pause",
    response_model=ChangedModel,
    responses={**_NOT_FOUND, **_CONFLICT},
)
def pause(
    instance_id: InstanceId, client: ClientDep, request: Request, body: PauseRequest | None = None
) -> ChangedModel:
    """Pause a PENDING or RUNNING instance (a no-op if it is already paused)."""
    body = body or PauseRequest()
    changed = client.pause(
        instance_id, body.reason, resume_at=body.resume_at, by=actor(request, body.by)
    )
    return ChangedModel(changed=changed, instance=InstanceModel.of(client.status(instance_id)))


@router.post(
    "/instances/{instance_id}/resume",
    response_model=ChangedModel,
    responses={**_NOT_FOUND, **_CONFLICT},
)
def resume(
    instance_id: InstanceId, client: ClientDep, request: Request, body: ResumeRequest | None = None
) -> ChangedModel:
    """Resume a PAUSED instance (a no-op if it is not paused)."""
    body = body or ResumeRequest()
    changed = client.resume(
        instance_id,
        body.reason,
        by=actor(request, body.by),
        deliver_failure=body.deliver_failure,
    )
    return ChangedModel(changed=changed, instance=InstanceModel.of(client.status(instance_id)))


@router.post(
    "/instances/{instance_id}/terminate",
    response_model=InstanceModel,
    responses={**_NOT_FOUND, **_CONFLICT},
)
def terminate(
    instance_id: InstanceId,
    client: ClientDep,
    request: Request,
    body: TerminateRequest | None = None,
) -> InstanceModel:
    """End a live instance as TERMINATED."""
    body = body or TerminateRequest()
    client.terminate(instance_id, body.reason, by=actor(request, body.by), recursive=body.recursive)
    return InstanceModel.of(client.status(instance_id))


@router.post(
    "/instances/{instance_id}/events/{event_name}",
    status_code=202,
    response_model=dict[str, str],
    responses={**_NOT_FOUND, **_CONFLICT},
)
def raise_event(
    instance_id: InstanceId,
    event_name: Annotated[str, Path(min_length=1, max_length=256)],
    client: ClientDep,
    data: Annotated[Any, Body(description="The event's data: any JSON value.")] = None,
) -> dict[str, str]:
    """Send an external event (kept until a paused instance resumes)."""
    client.raise_event(instance_id, event_name, data)
    return {"instance_id": instance_id, "event": event_name}


@router.delete(
    "/instances/{instance_id}",
    response_model=CountModel,
    responses={**_NOT_FOUND, 409: {"model": Error, "description": "The instance is still live."}},
)
def purge(instance_id: InstanceId, client: ClientDep) -> CountModel:
    """Delete a finished instance and its history."""
    client.purge(instance_id)
    return CountModel(count=1)


@router.post("/bulk/pause", response_model=CountModel, tags=["bulk"])
def pause_many(body: BulkPauseRequest, client: ClientDep, request: Request) -> CountModel:
    """Pause every PENDING or RUNNING instance matching the filter."""
    return CountModel(
        count=client.pause_many(
            body.to_filter(),
            reason=body.reason,
            resume_at=body.resume_at,
            by=actor(request, body.by),
        )
    )


@router.post("/bulk/resume", response_model=CountModel, tags=["bulk"])
def resume_many(body: BulkResumeRequest, client: ClientDep, request: Request) -> CountModel:
    """Resume every PAUSED instance matching the filter."""
    return CountModel(
        count=client.resume_many(body.to_filter(), reason=body.reason, by=actor(request, body.by))
    )


@router.post("/bulk/terminate", response_model=CountModel, tags=["bulk"])
def terminate_many(body: BulkTerminateRequest, client: ClientDep, request: Request) -> CountModel:
    """Terminate every live instance matching the filter."""
    return CountModel(
        count=client.terminate_many(
            body.to_filter(),
            reason=body.reason,
            by=actor(request, body.by),
            recursive=body.recursive,
        )
    )


@router.post("/bulk/purge", response_model=CountModel, tags=["bulk"])
def purge_many(body: FilterModel, client: ClientDep) -> CountModel:
    """Delete every finished instance matching the filter."""
    return CountModel(count=client.purge_many(body.to_filter()))


@router.get("/stats", response_model=StatsModel, tags=["stats"])
def stats(client: ClientDep, flt: FilterDep) -> StatsModel:
    """How many instances (matching every given filter) there are in each status."""
    counts = client.count(flt)
    return StatsModel(counts={s.value: counts.get(s, 0) for s in Status})


# -- standing pauses ----------------------------------------------------------------------

TypeName = Annotated[str, Path(min_length=1, max_length=256)]


def _standing(client: Client, changed: bool) -> TypeChangedModel:
    pauses = [StandingPauseModel.of(p) for p in client.standing_pauses()]
    return TypeChangedModel(changed=changed, standing_pauses=pauses)


@router.get("/standing-pauses", response_model=StandingPausesModel, tags=["standing pauses"])
def standing_pauses(client: ClientDep) -> StandingPausesModel:
    """What stands: paused orchestrator types and activity types."""
    return StandingPausesModel(items=[StandingPauseModel.of(p) for p in client.standing_pauses()])


@router.post(
    "/orchestrators/{name}/pause", response_model=TypeChangedModel, tags=["standing pauses"]
)
def pause_orchestrator(
    name: TypeName, client: ClientDep, request: Request, body: TypePauseRequest | None = None
) -> TypeChangedModel:
    """Pause every instance of an orchestrator, and hold new ones, until resumed."""
    body = body or TypePauseRequest()
    changed = client.pause_orchestrator(
        name, body.reason, resume_at=body.resume_at, by=actor(request, body.by), force=body.force
    )
    return _standing(client, changed)


@router.post(
    "/orchestrators/{name}/resume", response_model=TypeChangedModel, tags=["standing pauses"]
)
def resume_orchestrator(
    name: TypeName, client: ClientDep, request: Request, body: ResumeRequest | None = None
) -> TypeChangedModel:
    """End an orchestrator's standing pause; resume the instances it paused."""
    body = body or ResumeRequest()
    return _standing(
        client, client.resume_orchestrator(name, body.reason, by=actor(request, body.by))
    )


@router.post("/activities/{name}/pause", response_model=TypeChangedModel, tags=["standing pauses"])
def pause_activity(
    name: TypeName, client: ClientDep, request: Request, body: TypePauseRequest | None = None
) -> TypeChangedModel:
    """Hold every execution of an activity, in every orchestration, until resumed."""
    body = body or TypePauseRequest()
    changed = client.pause_activity(
        name, body.reason, resume_at=body.resume_at, by=actor(request, body.by), force=body.force
    )
    return _standing(client, changed)


@router.post("/activities/{name}/resume", response_model=TypeChangedModel, tags=["standing pauses"])
def resume_activity(
    name: TypeName, client: ClientDep, request: Request, body: ResumeRequest | None = None
) -> TypeChangedModel:
    """End an activity's standing pause; held executions start in scheduling order."""
    body = body or ResumeRequest()
    return _standing(client, client.resume_activity(name, body.reason, by=actor(request, body.by)))


@router.post(
    "/instances/{instance_id}/rewind",
    response_model=InstanceModel,
    responses={**_NOT_FOUND, **_CONFLICT},
)
def rewind(
    instance_id: InstanceId, client: ClientDep, request: Request, body: RewindRequest | None = None
) -> InstanceModel:
    """Run a FAILED instance again from before its failure: the calls that failed run
    again, those that succeeded keep their results (409 if it did not fail)."""
    body = body or RewindRequest()
    client.rewind(instance_id, body.reason, by=actor(request, body.by))
    return InstanceModel.of(client.status(instance_id))


@router.post(
    "/instances/{instance_id}/restart",
    status_code=201,
    response_model=InstanceModel,
    responses={**_NOT_FOUND, **_CONFLICT},
)
def restart(
    instance_id: InstanceId, client: ClientDep, request: Request, body: RestartRequest | None = None
) -> InstanceModel:
    """Start a finished instance again from the beginning, with its original input
    (409 if it is live); returns the new run."""
    body = body or RestartRequest()
    new_id = client.restart(
        instance_id,
        new_instance_id=body.new_instance_id,
        reason=body.reason,
        by=actor(request, body.by),
    )
    return InstanceModel.of(client.status(new_id))
