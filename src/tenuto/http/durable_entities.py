"""Durable entities in the Durable Functions HTTP API, under
``/runtime/webhooks/durabletask/entities`` (see :mod:`tenuto.http.durable`).

==========  ==============================================  ==============================
Method      Route (relative to the prefix)                  Status codes
==========  ==============================================  ==============================
``GET``     ``entities/{entityName}/{entityKey}``           200 the state, 404
``GET``     ``entities/{entityName}``                       200 a page (``fetchState``,
                                                            ``lastOperationTimeFrom/To``,
                                                            ``top``, the
                                                            ``x-ms-continuation-token``
                                                            header)
``POST``    ``entities/{entityName}/{entityKey}?op=``       202 (the body is the input)
``DELETE``  ``entities/{entityName}/{entityKey}``           202: signals ``delete`` (which
                                                            class entities handle by
                                                            deleting their state)
==========  ==============================================  ==============================
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import JSONResponse, Response

from ..entities import EntityId, EntityState
from .durable import (
    _ACCEPTED,
    _ERROR_RESPONSES,
    CONTINUATION_HEADER,
    PREFIX,
    ClientDep,
    RawBody,
    _df_errors,
    _hub_params,
    _invalid,
    iso,
    parse_bool,
    parse_payload,
    parse_time,
    parse_top,
)
from .models import Error

router = APIRouter(
    prefix=PREFIX,
    tags=["durable functions"],
    dependencies=[Depends(_hub_params)],
    responses=_ERROR_RESPONSES,
)
Name = Annotated[str, Path(alias="entityName", description="The entity's name.")]
Key = Annotated[str, Path(alias="entityKey", description="The entity's key.")]


def _entity_payload(st: EntityState, fetch_state: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "entityId": {"name": st.entity_id.name, "key": st.entity_id.key},
        "lastOperationTime": iso(st.last_modified),
    }
    if fetch_state:
        body["state"] = st.state
    return body


@router.get(
    "/entities/{entityName}/{entityKey}",
    responses={200: {"description": "The entity's state."}, 404: {"model": Error}},
)
def get_entity(client: ClientDep, name: Name, key: Key) -> Response:
    """An entity's state (404 if it has none)."""
    with _df_errors():
        st = client.get_entity(EntityId(name, key))
    if st is None or not st.has_state:
        return JSONResponse(
            {"error": "not_found", "message": f"no entity @{name.lower()}@{key}"}, 404
        )
    return JSONResponse(st.state)


@router.get("/entities/{entityName}", responses={200: {"description": "A page of entities."}})
def list_entities(
    client: ClientDep,
    name: Name,
    fetch_state: Annotated[str | None, Query(alias="fetchState")] = None,
    since: Annotated[str | None, Query(alias="lastOperationTimeFrom")] = None,
    until: Annotated[str | None, Query(alias="lastOperationTimeTo")] = None,
    top: Annotated[str | None, Query()] = None,
    continuation: Annotated[str | None, Header(alias=CONTINUATION_HEADER)] = None,
) -> Response:
    """The entities of a name that have a state, in key order, a page at a time."""
    with_state = parse_bool(fetch_state, "fetchState", False)
    start = parse_time(since, "lastOperationTimeFrom")
    end = parse_time(until, "lastOperationTimeTo")
    limit = parse_top(top)
    with _df_errors():
        page = client.query_entities(
            name,
            last_modified_from=start,
            last_modified_to=end,
            include_state=with_state,
            limit=limit,
            cursor=(continuation or "").strip() or None,
        )
    body = [_entity_payload(st, with_state) for st in page.items if st.has_state]
    headers = {CONTINUATION_HEADER: page.next_cursor} if page.next_cursor else None
    return JSONResponse(body, headers=headers)


@router.post(
    "/entities/{entityName}/{entityKey}",
    status_code=202,
    response_class=Response,
    responses={**_ACCEPTED},
)
def signal_entity(
    client: ClientDep,
    name: Name,
    key: Key,
    body: RawBody,
    op: Annotated[str | None, Query(description="The operation (default: none).")] = None,
) -> Response:
    """Signal an operation; the body is its input."""
    if not op:
        raise _invalid("give the operation to signal: ?op=NAME")
    data = parse_payload(body, "the operation input")
    with _df_errors():
        client.signal_entity(EntityId(name, key), op, data)
    return Response(status_code=202)


@router.delete(
    "/entities/{entityName}/{entityKey}",
    status_code=202,
    response_class=Response,
    responses={**_ACCEPTED},
)
def delete_entity(client: ClientDep, name: Name, key: Key) -> Response:
    """Signal ``delete`` (class entities delete their state; function entities handle
    it as they choose)."""
    with _df_errors():
        client.signal_entity(EntityId(name, key), "delete")
    return Response(status_code=202)
