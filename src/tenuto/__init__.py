"""tenuto: a durable orchestration engine for Python with first-class pause and resume.

The public surface::

    app = tenuto.App()                       # @app.orchestrator, @app.activity
    tenuto.Worker(app, "sqlite:///tenuto.db")  # runs them
    tenuto.Client("sqlite:///tenuto.db")       # starts, pauses, resumes, inspects
"""

from ._activities import ActivityInfo, activity_info
from ._entity_client import EntityCleaning
from .app import App
from .bulk import BulkPreview
from .client import AsyncClient, Client
from .clock import Clock, SystemClock
from .context import OrchestrationContext
from .entities import EntityContext, EntityId, EntityState
from .errors import (
    ActivityFailed,
    EntityOperationFailed,
    EventTimeout,
    InstanceExists,
    InstanceFinished,
    InstanceNotFinished,
    InstanceNotFound,
    InvalidCursor,
    InvalidJSON,
    InvalidType,
    LockingRulesViolation,
    NonDeterminismError,
    SubOrchestrationFailed,
    TaskFailed,
    TenutoError,
    UnknownActivity,
    UnknownEntity,
    UnknownOrchestrator,
    ValidationError,
    WaitTimeout,
)
from .events import EventsPage, TrackedEvent
from .filters import Filter
from .limits import Limit
from .replay_check import ReplayResult, replay_check
from .retention import Retention, RetentionRule
from .retry import RetryPolicy
from .schedules import ScheduleExists, ScheduleInfo, ScheduleNotFound, ScheduleRun
from .status import (
    Failure,
    HistoryEvent,
    InstanceStatus,
    Page,
    PauseInfo,
    StandingPause,
    Status,
)
from .tasks import Task
from .work import (
    AwaitedEvent,
    ChildWork,
    PendingTimer,
    PendingWork,
    QueuedActivity,
    RunningActivity,
    WaitingResult,
    WorkerInfo,
)
from .worker import Worker

__version__ = "0.1.0"

__all__ = [
    "ActivityFailed",
    "ActivityInfo",
    "App",
    "AsyncClient",
    "AwaitedEvent",
    "BulkPreview",
    "ChildWork",
    "Client",
    "Clock",
    "EntityCleaning",
    "EntityContext",
    "EntityId",
    "EntityOperationFailed",
    "EntityState",
    "EventTimeout",
    "EventsPage",
    "Failure",
    "Filter",
    "HistoryEvent",
    "InstanceExists",
    "InstanceFinished",
    "InstanceNotFinished",
    "InstanceNotFound",
    "InstanceStatus",
    "InvalidCursor",
    "InvalidJSON",
    "InvalidType",
    "Limit",
    "LockingRulesViolation",
    "NonDeterminismError",
    "OrchestrationContext",
    "Page",
    "PauseInfo",
    "PendingTimer",
    "PendingWork",
    "QueuedActivity",
    "ReplayResult",
    "Retention",
    "RetentionRule",
    "RetryPolicy",
    "RunningActivity",
    "ScheduleExists",
    "ScheduleInfo",
    "ScheduleNotFound",
    "ScheduleRun",
    "StandingPause",
    "Status",
    "SubOrchestrationFailed",
    "SystemClock",
    "Task",
    "TaskFailed",
    "TenutoError",
    "TrackedEvent",
    "UnknownActivity",
    "UnknownEntity",
    "UnknownOrchestrator",
    "ValidationError",
    "WaitTimeout",
    "WaitingResult",
    "Worker",
    "WorkerInfo",
    "activity_info",
    "replay_check",
]
