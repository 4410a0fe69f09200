"""The client calls of durable entities in the Durable Task protocol: ``SignalEntity``,
``GetEntity``, ``QueryEntities`` and ``CleanEntityStorage``, as thin adapters over
:class:`~tenuto.Client` (writes) and the store (reads: the protocol wants the stored
JSON state text byte for byte). Entity work items for SDK workers are not served: an
entity is run by a tenuto worker whose app registers it with ``@app.entity``.
"""

from __future__ import annotations

import base64
import binascii

import durabletask.internal.orchestrator_service_pb2 as pb
from google.protobuf import wrappers_pb2

from .._entities import read_states
from .._entity_client import MAX_ENTITY_PAGE
from ..client import Client
from ..entities import EntityId
from ..errors import InvalidCursor
from ..status import from_timestamp
from ..store.entity_base import EntityRow
from . import convert


def signal(client: Client, request: pb.SignalEntityRequest) -> pb.SignalEntityResponse:
    data = convert.parse(request, "input", "the operation input")
    at = (
        from_timestamp(convert.epoch(request.scheduledTime))
        if request.HasField("scheduledTime")
        else None
    )
    client.signal_entity(request.instanceId, request.name, data, signal_time=at)
    return pb.SignalEntityResponse()


def get(client: Client, request: pb.GetEntityRequest) -> pb.GetEntityResponse:
    target = str(EntityId.of(request.instanceId))
    rows = client.store.read(lambda r: r.get_entities([target]))
    metadata = _metadata(client, rows, request.includeState, transient=False)
    if not metadata:
        return pb.GetEntityResponse(exists=False)
    return pb.GetEntityResponse(exists=True, entity=metadata[0])


def query(client: Client, request: pb.QueryEntitiesRequest) -> pb.QueryEntitiesResponse:
    q = request.query
    prefix = q.instanceIdStartsWith.value if q.HasField("instanceIdStartsWith") else ""
    # "@name@key-prefix" selects a name and keys; anything shorter, a prefix of ids.
    name, key_prefix = None, None
    if prefix.startswith("@") and "@" in prefix[1:]:
        name, _, key_prefix = prefix[1:].partition("@")
    limit = min(q.pageSize.value, MAX_ENTITY_PAGE) if q.HasField("pageSize") else 100
    after = _after(q.continuationToken.value) if q.HasField("continuationToken") else None
    start = convert.epoch(q.lastModifiedFrom) if q.HasField("lastModifiedFrom") else None
    end = convert.epoch(q.lastModifiedTo) if q.HasField("lastModifiedTo") else None
    rows = client.store.read(
        lambda r: r.query_entities(
            None if name is None else EntityId(name, "k").name,
            key_prefix or None,
            start,
            end,
            max(limit, 1) + 1,
            after,
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    chosen = [row for row in rows if row.entity_id.startswith(prefix)]
    response = pb.QueryEntitiesResponse(
        entities=_metadata(client, chosen, q.includeState, transient=q.includeTransient)
    )
    if more and rows:
        token = base64.urlsafe_b64encode(rows[-1].entity_id.encode()).decode()
        response.continuationToken.CopyFrom(wrappers_pb2.StringValue(value=token))
    return response


def clean(client: Client, request: pb.CleanEntityStorageRequest) -> pb.CleanEntityStorageResponse:
    done = client.clean_entity_storage()
    return pb.CleanEntityStorageResponse(
        emptyEntitiesRemoved=done.removed, orphanedLocksReleased=done.released_locks
    )


def _metadata(
    client: Client, rows: list[EntityRow], include_state: bool, *, transient: bool
) -> list[pb.EntityMetadata]:
    """The protocol's view of ``rows``; without ``transient``, only entities that exist
    as Durable Task sees it: with a state, or locked."""
    shown = [r for r in rows if transient or r.state is not None or r.locked_by is not None]
    states = client.store.read(lambda r: read_states(r, shown, include_state=False))
    out = []
    for row, st in zip(shown, states, strict=True):
        m = pb.EntityMetadata(
            instanceId=row.entity_id,
            lastModifiedTime=convert.timestamp(row.last_modified),
            backlogQueueSize=st.pending_operations,
        )
        if row.locked_by is not None:
            m.lockedBy.CopyFrom(wrappers_pb2.StringValue(value=row.locked_by))
        if include_state and row.state is not None:
            m.serializedState.CopyFrom(wrappers_pb2.StringValue(value=row.state))
        out.append(m)
    return out


def _after(token: str) -> str | None:
    if not token:
        return None
    try:
        return EntityId.parse(base64.urlsafe_b64decode(token.encode()).decode()).__str__()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor(
            f"invalid continuation token {token[:40]!r}: pass back the one a page returned"
        ) from None
