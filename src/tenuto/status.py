"""What a client sees of an instance: its runtime status and everything around it."""

from __future__ import annotations

import enum
import traceback
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Status(enum.StrEnum):
    """The runtime status of an orchestration instance.

    ``PENDING``: created, its first step has not run yet (or its ``start_at`` is ahead).
    ``RUNNING``: started and not finished. ``PAUSED``: held by a pause; nothing of it
    starts until it is resumed. ``COMPLETED``, ``FAILED`` and ``TERMINATED`` are final.
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TERMINATED = "TERMINATED"

    @property
    def is_terminal(self) -> bool:
        """True for the final statuses: COMPLETED, FAILED, TERMINATED."""
        return self in TERMINAL


#: The final statuses: an instance in one of them never changes again (purge deletes it).
TERMINAL = (Status.COMPLETED, Status.FAILED, Status.TERMINATED)
#: The statuses of an instance that has not finished: what terminate applies to.
LIVE = (Status.PENDING, Status.RUNNING, Status.PAUSED)
#: Live and not paused: the statuses a pause applies to, and those in which a step of the
#: instance may commit.
PAUSABLE = (Status.PENDING, Status.RUNNING)


def type_name(kind: type) -> str:
    """The name a failure reports for an exception type: qualified unless built in."""
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def storable_text(text: str) -> str:
    """``text`` with what no database can store as text escaped: lone surrogates
    (``"\\udcff"`` instead) and NUL characters (``"\\x00"``)."""
    if text.isascii():
        return text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def from_timestamp(ts: float | None) -> datetime | None:
    """Turn stored epoch seconds into an aware UTC datetime."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def to_timestamp(value: datetime) -> float:
    """Epoch seconds of a datetime (naive ones are read as UTC), to the microsecond, so
    that ``to_timestamp(from_timestamp(t)) == t`` for every time tenuto stores."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return ((value - _EPOCH) // _MICROSECOND) / 1e6


@dataclass(frozen=True, slots=True)
class Failure:
    """Why an activity, a sub-orchestration or an orchestration failed."""

    type: str
    message: str
    traceback: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Failure:
        return cls(data["type"], data["message"], data.get("traceback"))

    @classmethod
    def from_exception(cls, exc: BaseException) -> Failure:
        """Describe ``exc``, whatever it is: an exception whose ``__str__`` raises is
        described by its type, and text that cannot be stored (lone surrogates, as in
        the message of an error about a file name that is not UTF-8) is escaped."""
        try:
            message = str(exc)
        except BaseException:
            message = f"<{type_name(type(exc))} whose message could not be turned into text>"
        try:
            trace = "".join(traceback.format_exception(exc))
        except BaseException:
            trace = "".join(traceback.format_tb(exc.__traceback__))
        return cls(type_name(type(exc)), storable_text(message), storable_text(trace))

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass(frozen=True, slots=True)
class PauseInfo:
    """Why and since when an instance is paused.

    ``source`` says where the pause came from: ``"client"`` (a client call, the CLI, HTTP),
    ``"orchestration"`` (the orchestration paused itself), ``"parent"`` (its parent
    orchestration was paused), ``"orchestrator"`` (a standing pause of its orchestrator),
    or tenuto itself: ``"nondeterminism"`` (its code no longer matches its history) or
    ``"failure"`` (a call failed its last attempt under ``on_exhausted="pause"``).
    """

    reason: str | None
    by: str | None
    since: datetime
    resume_at: datetime | None
    source: str = "client"

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "by": self.by,
            "since": self.since.isoformat(),
            "resume_at": None if self.resume_at is None else self.resume_at.isoformat(),
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class StandingPause:
    """A pause of a whole orchestrator type, or of one activity type everywhere."""

    kind: str  #: "orchestrator" or "activity"
    name: str
    reason: str | None
    by: str | None
    since: datetime
    resume_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "reason": self.reason,
            "by": self.by,
            "since": self.since.isoformat(),
            "resume_at": None if self.resume_at is None else self.resume_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    """A snapshot of one orchestration instance."""

    instance_id: str
    name: str
    runtime_status: Status
    input: Any
    output: Any
    failure: Failure | None
    custom_status: Any
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    parent_instance_id: str | None
    pause: PauseInfo | None
    #: Activities this instance waits on that a standing activity pause holds (it stays
    #: RUNNING meanwhile).
    held_activities: tuple[str, ...] = ()
    #: The version it was started with (``None``: none given).
    version: str | None = None
    #: Its tags, string keys to string values (``None``: none given).
    tags: dict[str, str] | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the instance has COMPLETED, FAILED or been TERMINATED."""
        return self.runtime_status.is_terminal

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        data = asdict(self)
        data["runtime_status"] = self.runtime_status.value
        data["failure"] = None if self.failure is None else self.failure.to_json()
        data["pause"] = None if self.pause is None else self.pause.to_json()
        data["held_activities"] = list(self.held_activities)
        for key in ("created_at", "updated_at", "completed_at"):
            value = getattr(self, key)
            data[key] = None if value is None else value.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One event of an instance's history. ``data`` holds the event's own fields."""

    sequence: int
    type: str
    timestamp: datetime
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "type": self.type,
            "timestamp": self.timestamp.isoformat(),
            **self.data,
        }


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a query: ``items``, and ``next_cursor`` (``None`` on the last page)."""

    items: list[T]
    next_cursor: str | None
