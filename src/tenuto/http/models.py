"""Request and response bodies of the REST API (they generate the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .._checks import MAX_REASON, MAX_TAG_KEY, MAX_TAG_VALUE, MAX_TAGS, MAX_VERSION
from ..filters import Filter
from ..status import HistoryEvent, InstanceStatus, StandingPause

StatusName = Literal["PENDING", "RUNNING", "PAUSED", "COMPLETED", "FAILED", "TERMINATED"]
Reason = Field(default=None, max_length=MAX_REASON, description="Why (recorded in history).")
By = Field(
    default=None,
    max_length=256,
    description="Who acts (recorded in history); ignored when the server has tokens: "
    "then the token's name is recorded.",
)


class Error(BaseModel):
    """Every error response."""

    error: str = Field(description="A short machine-readable code, e.g. not_found.")
    message: str = Field(description="What was wrong and what to do.")


class FailureModel(BaseModel):
    type: str
    message: str
    traceback: str | None = None


class PauseModel(BaseModel):
    reason: str | None
    by: str | None
    since: datetime
    resume_at: datetime | None
    source: str = Field(
        description="Where the pause came from: client, orchestration (it paused itself), "
        "parent, orchestrator (a standing pause), or tenuto itself: nondeterminism (its "
        "code no longer matches its history) or failure (a call failed its last attempt)."
    )


class InstanceModel(BaseModel):
    instance_id: str
    name: str
    runtime_status: StatusName
    input: Any = None
    output: Any = None
    failure: FailureModel | None = None
    custom_status: Any = None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    parent_instance_id: str | None = None
    pause: PauseModel | None = None
    held_activities: list[str] = Field(
        default_factory=list,
        description="Activities it waits on that a standing activity pause holds.",
    )
    version: str | None = Field(default=None, description="The version it was started with.")
    tags: dict[str, str] | None = Field(default=None, description="Its tags (string values).")
    warnings: list[str] | None = Field(
        default=None,
        description="GET of one PENDING instance: what may keep it from ever starting (no "
        "live worker serves its orchestrator). The pending work has them for any instance.",
    )

    @classmethod
    def of(cls, st: InstanceStatus, warnings: list[str] | None = None) -> InstanceModel:
        return cls.model_validate({**st.to_json(), "warnings": warnings})


class PageModel(BaseModel):
    items: list[InstanceModel]
    next_cursor: str | None = Field(description="Pass as cursor for the next page.")


class EventModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    sequence: int
    type: str
    timestamp: datetime

    @classmethod
    def of(cls, e: HistoryEvent) -> EventModel:
        return cls.model_validate(e.to_json())


class HistoryModel(BaseModel):
    instance_id: str
    events: list[EventModel]


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=256, description="The orchestrator's name.")
    input: Any = Field(default=None, description="Any JSON value.")
    instance_id: str | None = Field(default=None, min_length=1, max_length=256)
    start_at: datetime | None = Field(default=None, description="Delay the first step.")
    priority: int = Field(
        default=0,
        ge=-(2**31),
        le=2**31 - 1,
        description="Under an orchestrator limit, PENDING instances start highest first.",
    )
    version: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_VERSION,
        description="A version label stored with the instance (no control characters).",
    )
    tags: dict[str, str] | None = Field(
        default=None,
        max_length=MAX_TAGS,
        description=f"Tags stored with the instance: at most {MAX_TAGS}, keys of 1-"
        f"{MAX_TAG_KEY} characters, values of at most {MAX_TAG_VALUE}, no control characters.",
    )


class PauseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Reason
    by: str | None = Field(
        default=None,
        max_length=256,
        description="Who acts (recorded in history); ignored when the server has tokens: "
        "then the token's name is recorded.",
    )
    resume_at: datetime | None = Field(default=None, description="Resume by itself then.")


class TypePauseRequest(PauseRequest):
    force: bool = Field(
        default=False,
        description="Pause a name no worker has registered and no instance uses (else "
        "refused with 422: most likely a typo).",
    )


class ResumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Reason
    by: str | None = Field(
        default=None,
        max_length=256,
        description="Who acts (recorded in history); ignored when the server has tokens: "
        "then the token's name is recorded.",
    )
    deliver_failure: bool = Field(
        default=False,
        description="For an instance paused by a failed call (pause source 'failure'): "
        "hand the failure to the orchestrator code instead of running the call again.",
    )


class TerminateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Reason
    by: str | None = Field(
        default=None,
        max_length=256,
        description="Who acts (recorded in history); ignored when the server has tokens: "
        "then the token's name is recorded.",
    )
    recursive: bool = Field(default=True, description="Terminate sub-orchestrations too.")


class FilterModel(BaseModel):
    """Which instances a bulk operation applies to (all given conditions must hold)."""

    model_config = ConfigDict(extra="forbid")

    status: list[StatusName] | None = None
    name: str | None = Field(default=None, min_length=1, max_length=256)
    created_from: datetime | None = None
    created_to: datetime | None = None
    id_prefix: str | None = Field(default=None, min_length=1, max_length=256)

    def to_filter(self) -> Filter:
        """The :class:`tenuto.Filter` these fields describe."""
        return Filter(
            status=self.status,
            name=self.name,
            created_from=self.created_from,
            created_to=self.created_to,
            id_prefix=self.id_prefix,
        )


class BulkPauseRequest(FilterModel):
    reason: str | None = Reason
    resume_at: datetime | None = None
    by: str | None = Field(
        default=None,
        max_length=256,
        description="Who acts (recorded in history); ignored when the server has tokens: "
        "then the token's name is recorded.",
    )


class BulkResumeRequest(FilterModel):
    reason: str | None = Reason
    by: str | None = Field(
        default=None,
        max_length=256,
        description="Who acts (recorded in history); ignored when the server has tokens: "
        "then the token's name is recorded.",
    )


class BulkTerminateRequest(FilterModel):
    reason: str | None = Reason
    recursive: bool = Field(default=True, description="Terminate sub-orchestrations too.")
    by: str | None = Field(
        default=None,
        max_length=256,
        description="Who acts (recorded in history); ignored when the server has tokens: "
        "then the token's name is recorded.",
    )


class ChangedModel(BaseModel):
    changed: bool = Field(description="False when it was a no-op (already so).")
    instance: InstanceModel


class CountModel(BaseModel):
    count: int = Field(description="How many instances changed.")


class StatsModel(BaseModel):
    counts: dict[StatusName, int]


class StandingPauseModel(BaseModel):
    kind: Literal["orchestrator", "activity", "schedule", "entity"]
    name: str
    reason: str | None
    by: str | None
    since: datetime
    resume_at: datetime | None

    @classmethod
    def of(cls, sp: StandingPause) -> StandingPauseModel:
        return cls.model_validate(sp.to_json())


class StandingPausesModel(BaseModel):
    items: list[StandingPauseModel]


class TypeChangedModel(BaseModel):
    changed: bool = Field(description="False when it was a no-op (already so).")
    standing_pauses: list[StandingPauseModel]


class RewindRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Reason
    by: str | None = By


class RestartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Reason
    by: str | None = By
    new_instance_id: bool = Field(
        default=False,
        description="Start the new run under a new random id (the finished instance "
        "stays); by default it replaces the finished instance under the same id.",
    )
