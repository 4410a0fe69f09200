"""tenuto: a durable orchestration engine for Python with first-class pause and resume.

The public surface::

    app = tenuto.App()                       # @app.orchestrator, @app.activity
    tenuto.Worker(app, "sqlite:///tenuto.db")  # runs them
    tenuto.Client("sqlite:///tenuto.db")       # starts, pauses, resumes, inspects
"""

from ._activities import ActivityInfo, activity_info
from .app import App
from .bulk import BulkPreview
from .client import AsyncClient, Client
from .clock import Clock, SystemClock
from .context import OrchestrationContext
from .errors import (
    ActivityFailed,
    EventTimeout,
    InstanceExists,
    InstanceFinished,
    InstanceNotFinished,
    InstanceNotFound,
    InvalidCursor,
    InvalidJSON,
    InvalidType,
    NonDeterminismError,
    SubOrchestrationFailed,
    TaskFailed,
    TenutoError,
    UnknownActivity,
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
    "NonDeterminismError",
    "OrchestrationContext",
    "Page",
    "PauseInfo",
    "PendingTimer",
    "PendingWork",
    "QueuedActivity",
    "Retention",
    "RetentionRule",
    "RetryPolicy",
    "RunningActivity",
    "StandingPause",
    "Status",
    "SubOrchestrationFailed",
    "SystemClock",
    "Task",
    "TaskFailed",
    "TenutoError",
    "UnknownActivity",
    "UnknownOrchestrator",
    "ValidationError",
    "WaitTimeout",
    "WaitingResult",
    "Worker",
    "WorkerInfo",
    "activity_info",
]
