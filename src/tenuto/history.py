"""History event types and their stored JSON form.

An instance's history is an append-only list of events. The names follow the Durable Task
Framework so that its users recognize them. Each event has a type, a timestamp (epoch
seconds) and a JSON object of fields:

======================================  ===============================================
``ExecutionStarted``                    name, input, generation, parent_instance_id
``OrchestratorStarted``                 (a step begins; its time is ``ctx.now()``)
``TaskScheduled``                       task_id, name, input
``TaskCompleted``                       task_id, result
``TaskFailed``                          task_id, failure, attempts
``TimerCreated`` / ``TimerFired``       task_id, fire_at
``SubOrchestrationInstanceCreated``     task_id, name, instance_id, input
``SubOrchestrationInstanceCompleted``   task_id, result
``SubOrchestrationInstanceFailed``      task_id, failure
``EventRaised``                         name, data
``EventSent``                           task_id, instance_id, name, data
``ExecutionSuspended``                  reason, by, source, resume_at, task_id (self-pause)
``ExecutionResumed``                    reason, by
``ExecutionCompleted``                  status (COMPLETED or FAILED), result or failure
``ContinuedAsNew``                      input
``ExecutionTerminated``                 reason, by
``ActivityHeld`` / ``ActivityReleased`` activity, reason, by (a standing activity pause)
``ExecutionRewound``                    reason, by (a failed instance run again from
                                        before its failure, see ``Client.rewind``)
``Rewound``                             event, and that event's fields: an event that
                                        a rewind forgot, kept in its place (no replay
                                        sees it)
``ExecutionRestarted``                  restarted_from, reason, by (the first event of
                                        an instance restarted, see ``Client.restart``)
``PatchMarker``                         patch: the code ran past ``ctx.patched(patch)``
                                        for the first time (it takes the new path)
``EntityOperationCalled``               task_id, entity, name (the operation), input
``EntityOperationSignaled``             task_id, entity, name, input, signal_time
``EntityLockRequested``                 task_id, entities (sorted)
``EntityUnlockSent``                    task_id, entities
``EntityOperationCompleted``            task_id, result
``EntityOperationFailed``               task_id, failure
``EntityLockGranted``                   task_id
======================================  ===============================================

Messages delivered to an orchestration (activity results, timers, events) travel through
its inbox with the same types, and become history events when a step consumes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

EXECUTION_STARTED: Final = "ExecutionStarted"
ORCHESTRATOR_STARTED: Final = "OrchestratorStarted"
TASK_SCHEDULED: Final = "TaskScheduled"
TASK_COMPLETED: Final = "TaskCompleted"
TASK_FAILED: Final = "TaskFailed"
TIMER_CREATED: Final = "TimerCreated"
TIMER_FIRED: Final = "TimerFired"
SUB_CREATED: Final = "SubOrchestrationInstanceCreated"
SUB_COMPLETED: Final = "SubOrchestrationInstanceCompleted"
SUB_FAILED: Final = "SubOrchestrationInstanceFailed"
EVENT_RAISED: Final = "EventRaised"
EVENT_SENT: Final = "EventSent"
EXECUTION_SUSPENDED: Final = "ExecutionSuspended"
EXECUTION_RESUMED: Final = "ExecutionResumed"
EXECUTION_COMPLETED: Final = "ExecutionCompleted"
CONTINUED_AS_NEW: Final = "ContinuedAsNew"
EXECUTION_TERMINATED: Final = "ExecutionTerminated"
ACTIVITY_HELD: Final = "ActivityHeld"
ACTIVITY_RELEASED: Final = "ActivityReleased"
EXECUTION_REWOUND: Final = "ExecutionRewound"
REWOUND: Final = "Rewound"
PATCH_MARKER: Final = "PatchMarker"
EXECUTION_RESTARTED: Final = "ExecutionRestarted"
# Durable entities (see tenuto.entities): what an orchestration sends, and what comes back.
ENTITY_CALLED: Final = "EntityOperationCalled"
ENTITY_SIGNALED: Final = "EntityOperationSignaled"
ENTITY_LOCK_REQUESTED: Final = "EntityLockRequested"
ENTITY_UNLOCK_SENT: Final = "EntityUnlockSent"
ENTITY_COMPLETED: Final = "EntityOperationCompleted"
ENTITY_FAILED: Final = "EntityOperationFailed"
ENTITY_LOCK_GRANTED: Final = "EntityLockGranted"

#: Message types that complete a task identified by ``task_id``.
TASK_RESULTS: Final = frozenset(
    {
        TASK_COMPLETED,
        TASK_FAILED,
        TIMER_FIRED,
        SUB_COMPLETED,
        SUB_FAILED,
        ENTITY_COMPLETED,
        ENTITY_FAILED,
        ENTITY_LOCK_GRANTED,
    }
)


@dataclass(slots=True)
class Event:
    """A history event, or a message on its way to becoming one."""

    type: str
    ts: float
    data: dict[str, Any] = field(default_factory=dict)
    #: The stored JSON text of ``data``, for an event read from the store: written
    #: back unchanged, and where SDK payloads are found byte for byte.
    raw: str | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class Message:
    """A message waiting in an instance's inbox.

    ``execution_id`` is ``None`` for messages meant for whichever execution is current
    (external events); task results name the execution that scheduled the task, so that
    results meant for an execution that continued-as-new are dropped.
    """

    id: int
    instance_id: str
    execution_id: str | None
    event: Event
    visible_at: float
