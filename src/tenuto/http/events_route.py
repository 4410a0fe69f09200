"""``GET /api/events``: the tracking records of every process, in order, for operators
and log shippers (a long poll with ``wait``)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ..client import Client
from ..events import MAX_EVENTS, MAX_SEQ, MAX_WAIT, EventsPage
from .api import _ERRORS
from .common import JSONRoute, get_client

router = APIRouter(prefix="/api", tags=["events"], responses=_ERRORS, route_class=JSONRoute)
#: How often a waiting request looks again (without holding a thread in between).
_POLL = 0.2


class EventsPageModel(BaseModel):
    items: list[dict[str, Any]] = Field(
        description="Records, oldest first: seq, at, event, instance_id and the event's "
        "fields (reason, by, source, ...)."
    )
    next_cursor: int = Field(description="Pass as after to read on.")
    missed: int = Field(description="Records trimmed before they could be read (a gap).")


@router.get("/events", response_model=EventsPageModel)
async def events(
    client: Annotated[Client, Depends(get_client)],
    after: Annotated[
        int, Query(ge=0, le=MAX_SEQ, description="The seq of the last record read.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = 100,
    wait: Annotated[
        float,
        Query(ge=0, le=MAX_WAIT, description="Wait up to this many seconds for a record."),
    ] = 0,
) -> EventsPageModel:
    """Tracking records after ``after`` (every state change, whoever made it), numbered
    by the process that drains the outbox; with ``wait``, answers as soon as one comes."""
    deadline = time.monotonic() + wait
    while True:
        page: EventsPage = await asyncio.to_thread(client.events, after, limit=limit)
        if page.items or time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(_POLL, max(deadline - time.monotonic(), 0)))
    return EventsPageModel(
        items=[e.to_json() for e in page.items], next_cursor=page.next_cursor, missed=page.missed
    )
