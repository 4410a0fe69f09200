"""The count-only form of the bulk operations: how many instances one would change,
before it does (the dashboard's bulk dialogs show it)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ..client import MAX_PAGE, Client
from .api import _ERRORS
from .common import JSONRoute, get_client
from .models import FilterModel

router = APIRouter(prefix="/api", responses=_ERRORS, route_class=JSONRoute)
ClientDep = Annotated[Client, Depends(get_client)]


class BulkPreviewRequest(FilterModel):
    action: Literal["pause", "resume", "terminate", "purge"] = Field(
        description="The bulk operation to preview."
    )
    sample: int = Field(default=5, ge=0, le=MAX_PAGE, description="How many ids to list.")


class BulkPreviewModel(BaseModel):
    action: str
    count: int = Field(description="How many instances the operation would change now.")
    sample: list[str] = Field(description="The ids of the first of them, newest first.")


@router.post(
    "/bulk/preview",
    response_model=BulkPreviewModel,
    tags=["bulk"],
    operation_id="previewBulk",
)
def preview(body: BulkPreviewRequest, client: ClientDep) -> BulkPreviewModel:
    """How many instances matching the filter a bulk pause, resume, terminate or purge
    would change, and the first few; nothing changes."""
    found = client.preview_many(body.action, body.to_filter(), sample=body.sample)
    return BulkPreviewModel.model_validate(found.to_json())
