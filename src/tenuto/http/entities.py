"""Durable entities in tenuto's REST API, under ``/api/entities`` (a thin adapter over
the entity operations of :class:`~tenuto.Client`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from .._entity_client import MAX_ENTITY_PAGE
from ..entities import EntityId, EntityState
from .api import ClientDep, TypeName, _standing
from .common import ApiError, JSONRoute, actor
from .models import (
    Error,
    PauseModel,
    PauseRequest,
    ResumeRequest,
    TypeChangedModel,
)

router = APIRouter(prefix="/api", tags=["entities"], route_class=JSONRoute)
Name = Annotated[str, Path(min_length=1, max_length=256, description="The entity's name.")]
Key = Annotated[str, Path(min_length=1, max_length=256, description="The entity's key.")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Error, "description": "No such entity."}
}


class EntityModel(BaseModel):
    entity_id: str = Field(description="@name@key")
    name: str
    key: str
    state: Any = Field(description="Its state (null without one, or when not fetched).")
    has_state: bool
    last_modified: datetime
    locked_by: str | None = Field(description="The orchestration holding its lock.")
    pending_operations: int = Field(description="Operations queued, not applied yet.")
    pause: PauseModel | None = None

    @classmethod
    def of(cls, st: EntityState) -> EntityModel:
        return cls.model_validate(st.to_json())


class EntityPageModel(BaseModel):
    items: list[EntityModel]
    next_cursor: str | None


class SignalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operation: str = Field(min_length=1, max_length=256)
    input: Any = None
    signal_time: datetime | None = Field(default=None, description="Apply it then.")


class CleanModel(BaseModel):
    removed: int = Field(description="Entities removed (no state, lock, pause or queue).")
    released_locks: int = Field(description="Locks released whose orchestration is gone.")


class EntityChangedModel(BaseModel):
    changed: bool = Field(description="False when it was a no-op (already so).")
    entity: EntityModel


@router.get("/entities", response_model=EntityPageModel)
def query_entities(
    client: ClientDep,
    name: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    key_prefix: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    last_modified_from: datetime | None = None,
    last_modified_to: datetime | None = None,
    include_state: bool = True,
    limit: Annotated[int, Query(ge=1, le=MAX_ENTITY_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> EntityPageModel:
    """Entities in id order, a page at a time."""
    page = client.query_entities(
        name,
        key_prefix=key_prefix,
        last_modified_from=last_modified_from,
        last_modified_to=last_modified_to,
        include_state=include_state,
        limit=limit,
        cursor=cursor,
    )
    return EntityPageModel(
        items=[EntityModel.of(s) for s in page.items], next_cursor=page.next_cursor
    )


@router.get("/entities/{name}/{key}", response_model=EntityModel, responses=_NOT_FOUND)
def get_entity(name: Name, key: Key, client: ClientDep) -> EntityModel:
    """An entity's state, lock holder, queued operations and pause."""
    return EntityModel.of(_found(client.get_entity(EntityId(name, key)), name, key))


@router.post(
    "/entities/{name}/{key}/signals",
    status_code=202,
    response_class=Response,
    responses={202: {"description": "Accepted; no content."}},
)
def signal_entity(name: Name, key: Key, body: SignalRequest, client: ClientDep) -> Response:
    """Queue a one-way operation (202: accepted; it runs when the entity gets to it)."""
    client.signal_entity(
        EntityId(name, key), body.operation, body.input, signal_time=body.signal_time
    )
    return Response(status_code=202)


@router.post("/entities/{name}/{key}/pause", response_model=EntityChangedModel)
def pause_entity(
    name: Name, key: Key, client: ClientDep, request: Request, body: PauseRequest | None = None
) -> EntityChangedModel:
    """Hold an entity: its operations queue until it is resumed."""
    body = body or PauseRequest()
    entity = EntityId(name, key)
    changed = client.pause(
        str(entity), body.reason, resume_at=body.resume_at, by=actor(request, body.by)
    )
    return EntityChangedModel(
        changed=changed, entity=EntityModel.of(_found(client.get_entity(entity), name, key))
    )


@router.post(
    "/entities/{name}/{key}/resume", response_model=EntityChangedModel, responses=_NOT_FOUND
)
def resume_entity(
    name: Name, key: Key, client: ClientDep, request: Request, body: ResumeRequest | None = None
) -> EntityChangedModel:
    """Resume a paused entity: its queued operations run, in order."""
    body = body or ResumeRequest()
    entity = EntityId(name, key)
    changed = client.resume(str(entity), body.reason, by=actor(request, body.by))
    return EntityChangedModel(
        changed=changed, entity=EntityModel.of(_found(client.get_entity(entity), name, key))
    )


@router.post("/entity-storage/clean", response_model=CleanModel)
def clean_entity_storage(client: ClientDep) -> CleanModel:
    """Release orphaned locks and remove entities that hold nothing."""
    done = client.clean_entity_storage()
    return CleanModel(removed=done.removed, released_locks=done.released_locks)


@router.post(
    "/entity-types/{name}/pause", response_model=TypeChangedModel, tags=["standing pauses"]
)
def pause_entity_type(
    name: TypeName, client: ClientDep, request: Request, body: PauseRequest | None = None
) -> TypeChangedModel:
    """Hold every entity of a name, new ones included, until resumed."""
    body = body or PauseRequest()
    changed = client.pause_entity_type(
        name, body.reason, resume_at=body.resume_at, by=actor(request, body.by)
    )
    return _standing(client, changed)


@router.post(
    "/entity-types/{name}/resume", response_model=TypeChangedModel, tags=["standing pauses"]
)
def resume_entity_type(
    name: TypeName, client: ClientDep, request: Request, body: ResumeRequest | None = None
) -> TypeChangedModel:
    """End an entity type's standing pause."""
    body = body or ResumeRequest()
    return _standing(
        client, client.resume_entity_type(name, body.reason, by=actor(request, body.by))
    )


def _found(st: EntityState | None, name: str, key: str) -> EntityState:
    if st is None:
        raise ApiError(404, "not_found", f"no entity @{name.lower()}@{key}")
    return st
