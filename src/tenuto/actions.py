"""What an orchestration episode asks the engine to do, and how it ends.

Orchestrator code never touches storage. Each ``ctx`` call that starts durable work
records an action; the worker commits the episode's actions, together with the history
events they imply, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .retry import RetryPolicy
from .status import Failure


@dataclass(frozen=True, slots=True)
class ScheduleActivity:
    task_id: int
    name: str
    input: Any
    retry: RetryPolicy | None

    def describe(self) -> str:
        return f"calls activity {self.name!r}"


@dataclass(frozen=True, slots=True)
class CreateTimer:
    task_id: int
    fire_at: float

    def describe(self) -> str:
        return "creates a timer"


@dataclass(frozen=True, slots=True)
class CreateSubOrchestration:
    task_id: int
    name: str
    instance_id: str
    input: Any
    #: The child's version and tags (JSON text), as Durable Task SDKs may give them.
    version: str | None = None
    tags: str | None = None

    def describe(self) -> str:
        return f"calls sub-orchestrator {self.name!r}"


@dataclass(frozen=True, slots=True)
class PauseSelf:
    task_id: int
    reason: str | None

    def describe(self) -> str:
        return "pauses itself"


@dataclass(frozen=True, slots=True)
class SendEvent:
    task_id: int
    instance_id: str
    name: str
    data: Any

    def describe(self) -> str:
        return f"sends event {self.name!r}"


Action = ScheduleActivity | CreateTimer | CreateSubOrchestration | PauseSelf | SendEvent


@dataclass(frozen=True, slots=True)
class Completed:
    """The orchestrator function returned ``output``."""

    output: Any


@dataclass(frozen=True, slots=True)
class Failed:
    """The orchestrator function raised (or its code is not deterministic)."""

    failure: Failure


@dataclass(frozen=True, slots=True)
class ContinuedAsNew:
    """The orchestration restarts with ``input`` and a fresh history.

    ``carry_over`` holds external events received but not yet consumed, as
    ``(name, data)`` pairs, to deliver to the new execution in order.
    """

    input: Any
    carry_over: tuple[tuple[str, Any], ...]
    #: A new version for the next execution (``None``: keep the instance's version).
    version: str | None = None


Outcome = Completed | Failed | ContinuedAsNew
