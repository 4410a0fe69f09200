"""What is in flight, under ``/api/``: an instance's pending work, and the live workers
(see :mod:`tenuto.work`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ..client import Client
from ..errors import WaitTimeout
from .api import _ERRORS, _NOT_FOUND, MAX_WAIT, InstanceId
from .common import JSONRoute, get_client
from .models import StatusName

router = APIRouter(prefix="/api", responses=_ERRORS, route_class=JSONRoute)
ClientDep = Annotated[Client, Depends(get_client)]


class RunningActivityModel(BaseModel):
    name: str
    task_id: int
    attempt: int
    started_at: datetime | None
    worker: str | None = Field(description="The id of the worker running it.")


class WaitingResultModel(BaseModel):
    name: str | None
    task_id: int
    finished_at: datetime
    ok: bool = Field(description="False: it failed (the failure is handed over).")


class QueuedActivityModel(BaseModel):
    name: str
    task_id: int
    attempt: int
    held_by: str | None = Field(description="pause, standing pause, or null (not held).")
    start_at: datetime | None = Field(description="A retry's delay: when it may start.")


class TimerModel(BaseModel):
    task_id: int
    fire_at: datetime


class AwaitedEventModel(BaseModel):
    name: str
    timeout_at: datetime | None


class ChildWorkModel(BaseModel):
    instance_id: str
    name: str
    status: StatusName
    drained: bool


class PendingWorkModel(BaseModel):
    """What an instance has in flight; ``drained``: nothing of it (its sub-orchestrations
    included) is running."""

    instance_id: str
    status: StatusName
    drained: bool
    warnings: list[str] = Field(
        description="Names no live worker serves: its orchestrator, or an activity it waits for."
    )
    running: list[RunningActivityModel]
    waiting_results: list[WaitingResultModel]
    held: list[QueuedActivityModel]
    queued: list[QueuedActivityModel]
    timers: list[TimerModel]
    events: list[AwaitedEventModel]
    children: list[ChildWorkModel]


class WorkerModel(BaseModel):
    id: str
    kind: str = Field(description="tenuto, or sdk (a Durable Task SDK worker over gRPC).")
    host: str
    pid: int
    started_at: datetime
    last_seen: datetime
    orchestrators: list[str] | None = Field(description="Names it serves; null: any.")
    activities: list[str] | None = Field(description="Names it serves; null: any.")
    running: int = Field(description="Activities it was running at its last heartbeat.")


class WorkersModel(BaseModel):
    items: list[WorkerModel]


def _model(data: dict[str, Any]) -> PendingWorkModel:
    return PendingWorkModel.model_validate(data)


@router.get(
    "/instances/{instance_id}/work",
    response_model=PendingWorkModel,
    responses=_NOT_FOUND,
    tags=["instances"],
    operation_id="getPendingWork",
)
def pending_work(
    instance_id: InstanceId,
    client: ClientDep,
    wait_drained: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT,
            description="Wait up to this many seconds for it to be drained (nothing of it "
            "running); the answer says whether it is.",
        ),
    ] = 0,
) -> PendingWorkModel:
    """What the instance has in flight: activities running (and on which worker),
    results waiting for it (a paused instance takes them after its resume), held
    activities, timers, awaited events, sub-orchestrations."""
    if wait_drained:
        try:
            return _model(client.wait_drained(instance_id, timeout=wait_drained).to_json())
        except WaitTimeout:
            pass
    return _model(client.pending_work(instance_id).to_json())


@router.get("/workers", response_model=WorkersModel, tags=["workers"], operation_id="listWorkers")
def workers(client: ClientDep) -> WorkersModel:
    """The live workers: host, process, what they serve, activities running. A worker
    gone for longer than its lease is not listed."""
    return WorkersModel(items=[WorkerModel.model_validate(w.to_json()) for w in client.workers()])
