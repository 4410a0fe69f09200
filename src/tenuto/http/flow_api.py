"""Schedules and flow-control limits in the REST API, under ``/api/``: thin adapters
over the client's methods."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from .._limits import MAX_COUNT, MAX_RATE
from ..client import Client
from ..limits import Limit
from ..schedules import DEFAULT_CATCHUP, ScheduleInfo
from .api import _ERRORS
from .common import JSONRoute, actor, get_client
from .models import Error, PauseRequest, Reason, ResumeRequest, StandingPauseModel

router = APIRouter(prefix="/api", responses=_ERRORS, route_class=JSONRoute)
ClientDep = Annotated[Client, Depends(get_client)]
ScheduleId = Annotated[str, Path(min_length=1, max_length=200, description="The schedule id.")]
Name = Annotated[str, Path(min_length=1, max_length=256)]
Overlap = Literal["skip", "buffer_one", "allow_all", "terminate_previous"]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Error, "description": "Unknown schedule."}
}


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


#: The longest duration the API takes (about 31 years), in seconds.
_LONGEST = 1e9


class _Timing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    every_seconds: float | None = Field(
        default=None, gt=0, le=_LONGEST, description="Fire every N seconds."
    )
    cron: str | None = Field(default=None, max_length=256, description='e.g. "0 2 * * *"')
    start_at: datetime | None = None
    end_at: datetime | None = None
    catchup_window_seconds: float | None = Field(default=None, ge=1, le=_LONGEST)
    jitter_seconds: float | None = Field(default=None, ge=0, le=_LONGEST)
    pause_on_failure: bool | None = None


class ScheduleCreate(_Timing):
    schedule_id: str = Field(min_length=1, max_length=200)
    orchestrator: str = Field(min_length=1, max_length=256)
    input: Any = Field(default=None, description="Any JSON value, given to every run.")
    timezone: str = Field(default="UTC", max_length=64, description="IANA name, for cron.")
    overlap: Overlap = "skip"
    replace: bool = Field(default=False, description="Update the schedule if the id is taken.")


class ScheduleUpdate(_Timing):
    orchestrator: str | None = Field(default=None, min_length=1, max_length=256)
    input: Any = Field(default=None, description="A new input (null keeps it).")
    timezone: str | None = Field(default=None, max_length=64)
    overlap: Overlap | None = None


class ScheduleRunModel(BaseModel):
    instance_id: str
    fire_time: datetime | None
    status: str | None


class ScheduleModel(BaseModel):
    schedule_id: str
    orchestrator: str
    input: Any = None
    every_seconds: float | None
    cron: str | None
    timezone: str
    start_at: datetime | None
    end_at: datetime | None
    overlap: Overlap
    catchup_window_seconds: float
    jitter_seconds: float | None
    pause_on_failure: bool
    created_at: datetime
    updated_at: datetime
    next_fires: list[datetime]
    paused: bool
    pause: StandingPauseModel | None
    last_runs: list[ScheduleRunModel]
    buffered: datetime | None

    @classmethod
    def of(cls, info: ScheduleInfo) -> ScheduleModel:
        return cls.model_validate(info.to_json())


class SchedulesModel(BaseModel):
    items: list[ScheduleModel]


class ScheduleChangedModel(BaseModel):
    changed: bool
    schedule: ScheduleModel


class BulkScheduleRequest(PauseRequest):
    orchestrator: str | None = Field(default=None, min_length=1, max_length=256)
    id_prefix: str | None = Field(default=None, min_length=1, max_length=200)


class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap: Overlap | None = Field(default=None, description="Instead of the schedule's.")


class TriggeredModel(BaseModel):
    instance_id: str | None = Field(description="null: the overlap policy did not start it.")


class BackfillRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: datetime
    end: datetime


class StartedModel(BaseModel):
    started: list[str]


class CountModel(BaseModel):
    count: int


class ActivityLimitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_concurrent: int | None = Field(
        default=None, ge=1, le=MAX_COUNT, description="Most running at once."
    )
    per_second: float | None = Field(
        default=None, gt=0, le=MAX_RATE, description="Most starts in any second."
    )
    reason: str | None = Reason
    by: str | None = Field(default=None, max_length=256)


class OrchestratorLimitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_running: int = Field(ge=1, le=MAX_COUNT, description="Most instances RUNNING at once.")
    reason: str | None = Reason
    by: str | None = Field(default=None, max_length=256)


class LimitModel(BaseModel):
    kind: Literal["activity", "orchestrator"]
    name: str
    max_concurrent: int | None
    per_second: float | None
    reason: str | None
    by: str | None
    since: datetime
    source: Literal["client", "code"]

    @classmethod
    def of(cls, limit: Limit) -> LimitModel:
        return cls.model_validate(limit.to_json())


class LimitsModel(BaseModel):
    items: list[LimitModel]


class RemovedModel(BaseModel):
    removed: bool


# -- schedules ----------------------------------------------------------------------------


@router.get("/schedules", response_model=SchedulesModel, tags=["schedules"])
def schedules(
    client: ClientDep, orchestrator: str | None = None, id_prefix: str | None = None
) -> SchedulesModel:
    """Every schedule, with its next fire times, pause and latest run."""
    infos = client.schedules(orchestrator=orchestrator, id_prefix=id_prefix)
    return SchedulesModel(items=[ScheduleModel.of(i) for i in infos])


@router.post(
    "/schedules",
    status_code=201,
    response_model=ScheduleModel,
    tags=["schedules"],
    responses={409: {"model": Error, "description": "The id is taken."}},
)
def create_schedule(body: ScheduleCreate, client: ClientDep, response: Response) -> ScheduleModel:
    """Create a schedule (give every_seconds or cron)."""
    info = client.create_schedule(
        body.schedule_id,
        body.orchestrator,
        body.input,
        every=_seconds(body.every_seconds),
        cron=body.cron,
        timezone=body.timezone,
        start_at=body.start_at,
        end_at=body.end_at,
        overlap=body.overlap,
        catchup_window=_seconds(body.catchup_window_seconds) or DEFAULT_CATCHUP,
        jitter=_seconds(body.jitter_seconds),
        pause_on_failure=bool(body.pause_on_failure),
        replace=body.replace,
    )
    response.headers["Location"] = f"/api/schedules/{quote(info.schedule_id, safe='')}"
    return ScheduleModel.of(info)


@router.get(
    "/schedules/{schedule_id}",
    response_model=ScheduleModel,
    tags=["schedules"],
    responses=_NOT_FOUND,
)
def schedule(schedule_id: ScheduleId, client: ClientDep) -> ScheduleModel:
    """One schedule, with its latest runs."""
    return ScheduleModel.of(client.schedule(schedule_id))


@router.patch(
    "/schedules/{schedule_id}",
    response_model=ScheduleModel,
    tags=["schedules"],
    responses=_NOT_FOUND,
)
def update_schedule(
    schedule_id: ScheduleId, body: ScheduleUpdate, client: ClientDep
) -> ScheduleModel:
    """Change what is given of a schedule (null or absent keeps a value)."""
    info = client.update_schedule(
        schedule_id,
        orchestrator=body.orchestrator,
        input=body.input,
        every=_seconds(body.every_seconds),
        cron=body.cron,
        timezone=body.timezone,
        start_at=body.start_at,
        end_at=body.end_at,
        overlap=body.overlap,
        catchup_window=_seconds(body.catchup_window_seconds),
        jitter=_seconds(body.jitter_seconds),
        pause_on_failure=body.pause_on_failure,
    )
    return ScheduleModel.of(info)


@router.delete(
    "/schedules/{schedule_id}", status_code=204, tags=["schedules"], responses=_NOT_FOUND
)
def delete_schedule(schedule_id: ScheduleId, client: ClientDep) -> Response:
    """Delete a schedule (its runs stay)."""
    client.delete_schedule(schedule_id)
    return Response(status_code=204)


@router.post("/schedules/pause", response_model=CountModel, tags=["schedules"])
def pause_schedules(
    client: ClientDep, request: Request, body: BulkScheduleRequest | None = None
) -> CountModel:
    """Pause every schedule (of an orchestrator, with an id prefix)."""
    body = body or BulkScheduleRequest()
    count = client.pause_schedules(
        orchestrator=body.orchestrator,
        id_prefix=body.id_prefix,
        reason=body.reason,
        resume_at=body.resume_at,
        by=actor(request, body.by),
    )
    return CountModel(count=count)


@router.post("/schedules/resume", response_model=CountModel, tags=["schedules"])
def resume_schedules(
    client: ClientDep, request: Request, body: BulkScheduleRequest | None = None
) -> CountModel:
    """Resume every paused schedule (of an orchestrator, with an id prefix)."""
    body = body or BulkScheduleRequest()
    count = client.resume_schedules(
        orchestrator=body.orchestrator,
        id_prefix=body.id_prefix,
        reason=body.reason,
        by=actor(request, body.by),
    )
    return CountModel(count=count)


@router.post(
    "/schedules/{schedule_id}/pause",
    response_model=ScheduleChangedModel,
    tags=["schedules"],
    responses=_NOT_FOUND,
)
def pause_schedule(
    schedule_id: ScheduleId, client: ClientDep, request: Request, body: PauseRequest | None = None
) -> ScheduleChangedModel:
    """Pause a schedule: no run starts until it is resumed."""
    body = body or PauseRequest()
    changed = client.pause_schedule(
        schedule_id, body.reason, resume_at=body.resume_at, by=actor(request, body.by)
    )
    return ScheduleChangedModel(
        changed=changed, schedule=ScheduleModel.of(client.schedule(schedule_id))
    )


@router.post(
    "/schedules/{schedule_id}/resume",
    response_model=ScheduleChangedModel,
    tags=["schedules"],
    responses=_NOT_FOUND,
)
def resume_schedule(
    schedule_id: ScheduleId, client: ClientDep, request: Request, body: ResumeRequest | None = None
) -> ScheduleChangedModel:
    """Resume a paused schedule."""
    body = body or ResumeRequest()
    changed = client.resume_schedule(schedule_id, body.reason, by=actor(request, body.by))
    return ScheduleChangedModel(
        changed=changed, schedule=ScheduleModel.of(client.schedule(schedule_id))
    )


@router.post(
    "/schedules/{schedule_id}/trigger",
    response_model=TriggeredModel,
    tags=["schedules"],
    responses=_NOT_FOUND,
)
def trigger_schedule(
    schedule_id: ScheduleId, client: ClientDep, body: TriggerRequest | None = None
) -> TriggeredModel:
    """Start a run now (paused or not), by the overlap policy."""
    body = body or TriggerRequest()
    return TriggeredModel(instance_id=client.trigger_schedule(schedule_id, overlap=body.overlap))


@router.post(
    "/schedules/{schedule_id}/backfill",
    response_model=StartedModel,
    tags=["schedules"],
    responses=_NOT_FOUND,
)
def backfill_schedule(
    schedule_id: ScheduleId, body: BackfillRequest, client: ClientDep
) -> StartedModel:
    """Start the runs of the fire times from start to end that have none."""
    return StartedModel(started=client.backfill_schedule(schedule_id, body.start, body.end))


# -- limits -------------------------------------------------------------------------------


@router.get("/limits", response_model=LimitsModel, tags=["limits"])
def limits(client: ClientDep) -> LimitsModel:
    """Every flow-control limit, with reason and actor."""
    return LimitsModel(items=[LimitModel.of(lim) for lim in client.limits()])


@router.put("/limits/activities/{name}", response_model=LimitModel, tags=["limits"])
def limit_activity(
    name: Name, body: ActivityLimitRequest, client: ClientDep, request: Request
) -> LimitModel:
    """Limit an activity across every worker (replaces its limit)."""
    limit = client.limit_activity(
        name, body.max_concurrent, body.per_second, reason=body.reason, by=actor(request, body.by)
    )
    return LimitModel.of(limit)


@router.delete("/limits/activities/{name}", response_model=RemovedModel, tags=["limits"])
def remove_activity_limit(name: Name, client: ClientDep, request: Request) -> RemovedModel:
    """Lift an activity's limit."""
    return RemovedModel(removed=client.remove_activity_limit(name, by=actor(request)))


@router.put("/limits/orchestrators/{name}", response_model=LimitModel, tags=["limits"])
def limit_orchestrator(
    name: Name, body: OrchestratorLimitRequest, client: ClientDep, request: Request
) -> LimitModel:
    """At most max_running instances of an orchestrator RUNNING at once."""
    limit = client.limit_orchestrator(
        name, body.max_running, reason=body.reason, by=actor(request, body.by)
    )
    return LimitModel.of(limit)


@router.delete("/limits/orchestrators/{name}", response_model=RemovedModel, tags=["limits"])
def remove_orchestrator_limit(name: Name, client: ClientDep, request: Request) -> RemovedModel:
    """Lift an orchestrator's limit."""
    return RemovedModel(removed=client.remove_orchestrator_limit(name, by=actor(request)))
