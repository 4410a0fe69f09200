"""tenuto: a durable orchestration engine for Python with first-class pause and resume.

The public surface::

    app = tenuto.App()                       # @app.orchestrator, @app.activity
    tenuto.Worker(app, "sqlite:///tenuto.db")  # runs them
    tenuto.Client("sqlite:///tenuto.db")       # starts, pauses, resumes, inspects
"""

from ._activities import ActivityInfo, activity_info
from ._entity_client import EntityCleaning
from .app import App
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
from .filters import Filter
from .retention import Retention, RetentionRule
from .retry import RetryPolicy
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
from .worker import Worker

__version__ = "0.1.0"

__all__ = [
    "ActivityFailed",
    "ActivityInfo",
    "App",
    "AsyncClient",
    "Client",
    "Clock",
    "EntityCleaning",
    "EntityContext",
    "EntityId",
    "EntityOperationFailed",
    "EntityState",
    "EventTimeout",
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
    "LockingRulesViolation",
    "NonDeterminismError",
    "OrchestrationContext",
    "Page",
    "PauseInfo",
    "Retention",
    "RetentionRule",
    "RetryPolicy",
    "StandingPause",
    "Status",
    "SubOrchestrationFailed",
    "SystemClock",
    "Task",
    "TaskFailed",
    "TenutoError",
    "UnknownActivity",
    "UnknownEntity",
    "UnknownOrchestrator",
    "ValidationError",
    "WaitTimeout",
    "Worker",
    "activity_info",
]
