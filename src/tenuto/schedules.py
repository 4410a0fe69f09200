"""Schedules: when an orchestrator is started by itself, and what is known about it.

A schedule fires at *fire times*: every ``every`` (aligned to ``start_at``, else to the
Unix epoch, so ``every=timedelta(hours=1)`` fires on the hour) or at the times of a
``cron`` expression (five fields, or six with seconds first; parsed by ``cronsim``) in
``timezone`` (an IANA name, via ``zoneinfo``; daylight-saving gaps and repeats are
handled by ``cronsim``). Each fire time starts one run: an ordinary instance with id
``"{schedule_id}@{fire time in ISO 8601 UTC}"`` and tag ``schedule=ID``, so a fire time
never starts twice.

This module holds the values (:class:`ScheduleSpec`, :class:`ScheduleInfo`) and the fire
time arithmetic; :mod:`tenuto._schedules` changes schedules in the store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from .errors import TenutoError, ValidationError
from .status import StandingPause, Status

#: What a schedule does at a fire time while its latest run is unfinished.
OVERLAPS = ("skip", "buffer_one", "allow_all", "terminate_previous")
#: The default catch-up window: a fire time at most this old when it can be handled
#: (after a pause, or with no worker running) still starts its run.
DEFAULT_CATCHUP = timedelta(minutes=1)
#: The most fire times one backfill may start.
MAX_BACKFILL = 1000
_MICRO = 1_000_000
#: The longest duration a schedule takes, in seconds.
_LONGEST = 1e9


class ScheduleNotFound(TenutoError, LookupError):
    """No schedule has this id. HTTP 404."""

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"no schedule with id {schedule_id!r}; see 'tenuto schedule list'")
        self.schedule_id = schedule_id


class ScheduleExists(TenutoError):
    """``create_schedule`` was given an id that is taken. HTTP 409."""

    def __init__(self, schedule_id: str) -> None:
        super().__init__(
            f"a schedule with id {schedule_id!r} already exists; change it with "
            "update_schedule ('tenuto schedule create --replace'), or delete it first"
        )
        self.schedule_id = schedule_id


def check_schedule_id(schedule_id: Any) -> str:
    """A schedule id: 1-200 characters usable in an instance id, without ``@`` (which
    separates it from the fire time in its runs' ids)."""
    from ._ids import check_instance_id

    if isinstance(schedule_id, str) and ("@" in schedule_id or len(schedule_id) > 200):
        raise ValidationError(
            f"invalid schedule id {schedule_id[:80]!r}: use at most 200 characters and no '@' "
            "(its runs are named '<schedule id>@<fire time>')"
        )
    return check_instance_id(schedule_id, "schedule id")


def _seconds(value: Any, what: str, *, positive: bool = True) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ValidationError(f"{what} must be a timedelta (or seconds), not {value!r}")
    if seconds < 0 or (positive and seconds == 0) or seconds != seconds:
        raise ValidationError(f"{what} must be {'positive' if positive else 'at least 0'}")
    if seconds > _LONGEST:
        raise ValidationError(f"{what} must be at most {_LONGEST:g} seconds (about 31 years)")
    return seconds


def _epoch(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(f"{what} must be a timezone-aware datetime, not {value!r}")
    return value.timestamp()


def fire_time_text(at: float) -> str:
    """A fire time as in run ids: ISO 8601 UTC with a ``Z``, microseconds when not 0."""
    dt = datetime.fromtimestamp(round(at * _MICRO) / _MICRO, UTC)
    spec = "seconds" if dt.microsecond == 0 else "microseconds"
    return dt.isoformat(timespec=spec).replace("+00:00", "Z")


def run_id(schedule_id: str, at: float) -> str:
    """The instance id of the run of ``schedule_id`` for fire time ``at``."""
    return f"{schedule_id}@{fire_time_text(at)}"


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """When a schedule fires and how its runs behave (stored as JSON)."""

    every: float | None = None
    cron: str | None = None
    timezone: str = "UTC"
    start_at: float | None = None
    end_at: float | None = None
    overlap: str = "skip"
    catchup_window: float = DEFAULT_CATCHUP.total_seconds()
    jitter: float | None = None
    pause_on_failure: bool = False

    @classmethod
    def of(
        cls,
        *,
        every: timedelta | float | None = None,
        cron: str | None = None,
        timezone: str = "UTC",
        start_at: datetime | None = None,
        end_at: datetime | None = None,
        overlap: str = "skip",
        catchup_window: timedelta | float = DEFAULT_CATCHUP,
        jitter: timedelta | float | None = None,
        pause_on_failure: bool = False,
    ) -> ScheduleSpec:
        """A checked spec from a caller's values (:class:`~tenuto.ValidationError`)."""
        if (every is None) == (cron is None):
            raise ValidationError(
                "give exactly one of every (a timedelta, e.g. every=timedelta(hours=1)) and "
                "cron (e.g. cron='0 2 * * *')"
            )
        if overlap not in OVERLAPS:
            raise ValidationError(f"overlap must be one of {', '.join(OVERLAPS)}, not {overlap!r}")
        catchup = _seconds(catchup_window, "catchup_window")
        assert catchup is not None
        if catchup < 1:
            raise ValidationError(
                "catchup_window must be at least 1 second (a fire time is handled a moment "
                "after it comes)"
            )
        if not isinstance(pause_on_failure, bool):
            raise ValidationError("pause_on_failure must be True or False")
        spec = cls(
            every=_seconds(every, "every"),
            cron=cron,
            timezone=timezone,
            start_at=_epoch(start_at, "start_at"),
            end_at=_epoch(end_at, "end_at"),
            overlap=overlap,
            catchup_window=catchup,
            jitter=_seconds(jitter, "jitter", positive=False),
            pause_on_failure=pause_on_failure,
        )
        spec.check()
        return spec

    def check(self) -> None:
        if self.every is not None and self.every * _MICRO < 1:
            raise ValidationError("every must be at least a microsecond")
        if not isinstance(self.timezone, str):
            raise ValidationError("timezone must be an IANA name such as 'Europe/Paris'")
        try:
            self._zone()
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValidationError(
                f"unknown timezone {self.timezone[:60]!r}: use an IANA name such as "
                "'UTC' or 'Europe/Paris'"
            ) from None
        if self.cron is not None:
            if not isinstance(self.cron, str):
                raise ValidationError("cron must be a string such as '0 2 * * *'")
            try:
                CronSim(self.cron, datetime.now(self._zone()))
            except (CronSimError, ValueError) as exc:
                raise ValidationError(
                    f"invalid cron expression {self.cron[:80]!r}: {exc} (five fields: minute "
                    "hour day-of-month month day-of-week, e.g. '0 2 * * *'; or six, seconds first)"
                ) from None
        if self.start_at is not None and self.end_at is not None and self.end_at <= self.start_at:
            raise ValidationError("end_at must be after start_at")

    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ScheduleSpec:
        return cls(**json.loads(text))

    # -- fire times ----------------------------------------------------------------

    def fires(self, after: float, until: float | None = None) -> Iterator[float]:
        """The fire times after ``after`` (excluded) up to ``until`` (included), in
        order, within ``start_at`` and ``end_at``."""
        if self.start_at is not None and after < self.start_at:
            after = self.start_at - 1 / _MICRO
        for at in self._raw(after):
            if (until is not None and at > until) or (self.end_at is not None and at > self.end_at):
                return
            yield at

    def next_after(self, after: float) -> float | None:
        """The first fire time after ``after``; ``None`` once ``end_at`` has passed."""
        return next(self.fires(after), None)

    def _raw(self, after: float) -> Iterator[float]:
        if self.every is not None:
            step = round(self.every * _MICRO)
            anchor = round((self.start_at or 0.0) * _MICRO)
            k = (round(after * _MICRO) - anchor) // step + 1
            while True:
                yield (anchor + k * step) / _MICRO
                k += 1
        assert self.cron is not None
        zone = self._zone()
        for dt in CronSim(self.cron, datetime.fromtimestamp(after, zone)):
            yield dt.timestamp()

    def jitter_for(self, schedule_id: str, at: float) -> float:
        """The delay of the run of fire time ``at``: the same for every worker (derived
        from the run id), spread evenly over ``[0, jitter)``."""
        if not self.jitter:
            return 0.0
        digest = hashlib.sha256(run_id(schedule_id, at).encode()).digest()
        return self.jitter * int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True, slots=True)
class ScheduleRun:
    """A run a schedule started: its instance, fire time and current status (``None``
    if the instance was purged)."""

    instance_id: str
    fire_time: datetime | None
    status: Status | None

    def to_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "fire_time": None if self.fire_time is None else self.fire_time.isoformat(),
            "status": None if self.status is None else self.status.value,
        }


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A schedule as :meth:`tenuto.Client.schedule` shows it."""

    schedule_id: str
    orchestrator: str
    input: Any
    every: timedelta | None
    cron: str | None
    timezone: str
    start_at: datetime | None
    end_at: datetime | None
    overlap: str
    catchup_window: timedelta
    jitter: timedelta | None
    pause_on_failure: bool
    created_at: datetime
    updated_at: datetime
    #: The next fire times (a few), from now or from where it stands when paused.
    next_fires: tuple[datetime, ...]
    #: The standing pause that holds it, if paused.
    pause: StandingPause | None
    #: Its latest runs, newest first.
    last_runs: tuple[ScheduleRun, ...] = field(default=())
    #: A fire time waiting for the latest run to finish (``overlap="buffer_one"``).
    buffered: datetime | None = None

    @property
    def paused(self) -> bool:
        return self.pause is not None

    def to_json(self) -> dict[str, Any]:
        def iso(dt: datetime | None) -> str | None:
            return None if dt is None else dt.isoformat()

        return {
            "schedule_id": self.schedule_id,
            "orchestrator": self.orchestrator,
            "input": self.input,
            "every_seconds": None if self.every is None else self.every.total_seconds(),
            "cron": self.cron,
            "timezone": self.timezone,
            "start_at": iso(self.start_at),
            "end_at": iso(self.end_at),
            "overlap": self.overlap,
            "catchup_window_seconds": self.catchup_window.total_seconds(),
            "jitter_seconds": None if self.jitter is None else self.jitter.total_seconds(),
            "pause_on_failure": self.pause_on_failure,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "next_fires": [iso(t) for t in self.next_fires],
            "paused": self.paused,
            "pause": None if self.pause is None else self.pause.to_json(),
            "last_runs": [r.to_json() for r in self.last_runs],
            "buffered": iso(self.buffered),
        }


def parse_fire_time(instance_id: str) -> datetime | None:
    """The fire time in a run's id (``None`` if it has none)."""
    _, _, text = instance_id.rpartition("@")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


__all__ = [
    "OVERLAPS",
    "ScheduleExists",
    "ScheduleInfo",
    "ScheduleNotFound",
    "ScheduleRun",
    "ScheduleSpec",
]
