"""The schedule and limit methods of :class:`tenuto.Client` (a mixin: the client class
stays about instances). Each is a thin adapter over :mod:`tenuto._schedules` and
:mod:`tenuto._limits`, in one transaction."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from . import _control, _limits, _schedules
from ._checks import check_text, check_time
from ._json import dumps, loads_shown
from .app import name_of
from .clock import Clock
from .errors import ValidationError
from .limits import Limit
from .schedules import (
    DEFAULT_CATCHUP,
    ScheduleInfo,
    ScheduleNotFound,
    ScheduleRun,
    ScheduleSpec,
    check_schedule_id,
    parse_fire_time,
)
from .status import StandingPause, Status, from_timestamp
from .store.base import Reader, Selection, StandingPauseRow, Store
from .store.flow import LimitRow, ScheduleRow

#: How many next fire times a schedule shows.
_NEXT_FIRES = 3


class FlowMethods:
    """Schedules and flow-control limits (mixed into :class:`tenuto.Client`)."""

    store: Store
    clock: Clock

    def _by(self, by: str | None) -> str:
        raise NotImplementedError  # Client's

    def _orchestrator_name(self, orchestrator: str | Callable[..., Any]) -> str:
        raise NotImplementedError  # Client's

    # -- schedules ---------------------------------------------------------------------

    def create_schedule(
        self,
        schedule_id: str,
        orchestrator: str | Callable[..., Any],
        input: Any = None,
        *,
        every: timedelta | None = None,
        cron: str | None = None,
        timezone: str = "UTC",
        start_at: datetime | None = None,
        end_at: datetime | None = None,
        overlap: str = "skip",
        catchup_window: timedelta = DEFAULT_CATCHUP,
        jitter: timedelta | None = None,
        pause_on_failure: bool = False,
        replace: bool = False,
    ) -> ScheduleInfo:
        """Start ``orchestrator`` with ``input`` at every fire time: ``every`` interval
        (aligned to ``start_at``, else to the epoch) or ``cron`` expression (in
        ``timezone``), from ``start_at`` to ``end_at``. Runs are instances with id
        ``"{schedule_id}@{fire time, ISO 8601 UTC}"`` and tag ``schedule=ID``; workers
        start them, exactly once per fire time.

        ``overlap``: what a fire time does while the latest run is unfinished: ``skip``
        (nothing), ``buffer_one`` (runs once it finishes; one at most),
        ``allow_all``, ``terminate_previous``. ``catchup_window``: a fire time missed
        (schedule paused, no worker running) still runs if at most this old, else is
        skipped. ``jitter``: each run starts up to this much later (spread, stable).
        ``pause_on_failure``: a failed run pauses the schedule. An id that is taken
        raises :class:`~tenuto.ScheduleExists`, unless ``replace`` (then it is updated).
        """
        sid = check_schedule_id(schedule_id)
        name = self._orchestrator_name(orchestrator)
        text = dumps(input, f"the input of schedule {sid!r}")
        spec = ScheduleSpec.of(
            every=every,
            cron=cron,
            timezone=timezone,
            start_at=start_at,
            end_at=end_at,
            overlap=overlap,
            catchup_window=catchup_window,
            jitter=jitter,
            pause_on_failure=pause_on_failure,
        )
        self.store.run(
            lambda tx: _schedules.create(
                tx, sid, name, text, spec, now=self.clock.now(), replace=replace
            )
        )
        return self.schedule(sid)

    def update_schedule(
        self,
        schedule_id: str,
        *,
        orchestrator: str | Callable[..., Any] | None = None,
        input: Any = None,
        every: timedelta | None = None,
        cron: str | None = None,
        timezone: str | None = None,
        start_at: datetime | None = None,
        end_at: datetime | None = None,
        overlap: str | None = None,
        catchup_window: timedelta | None = None,
        jitter: timedelta | None = None,
        pause_on_failure: bool | None = None,
    ) -> ScheduleInfo:
        """Change what is given of a schedule (``None`` keeps a value; ``every``
        replaces ``cron`` and the other way round). A change of its timing starts its
        fire times afresh from now. Its runs and its pause stay."""
        sid = check_schedule_id(schedule_id)
        current = self.store.read(lambda r: r.get_schedule(sid))
        if current is None:
            raise ScheduleNotFound(sid)
        old = ScheduleSpec.from_json(current.spec)
        timing: dict[str, Any] = {"every": old.every, "cron": old.cron}
        if every is not None or cron is not None:
            timing = {"every": every, "cron": cron}
        spec = ScheduleSpec.of(
            **timing,
            timezone=_given(timezone, old.timezone),
            start_at=_given(start_at, from_timestamp(old.start_at)),
            end_at=_given(end_at, from_timestamp(old.end_at)),
            overlap=_given(overlap, old.overlap),
            catchup_window=_given(catchup_window, old.catchup_window),
            jitter=_given(jitter, old.jitter),
            pause_on_failure=_given(pause_on_failure, old.pause_on_failure),
        )
        name = current.orchestrator
        if orchestrator is not None:
            name = self._orchestrator_name(orchestrator)
        text = current.input or "null"
        if input is not None:
            text = dumps(input, f"the input of schedule {sid!r}")
        self.store.run(
            lambda tx: _schedules.update(tx, sid, name, text, spec, now=self.clock.now())
        )
        return self.schedule(sid)

    def delete_schedule(self, schedule_id: str) -> None:
        """Delete a schedule (and its pause); its runs stay, as ordinary instances."""
        sid = check_schedule_id(schedule_id)
        self.store.run(lambda tx: _schedules.delete(tx, sid))

    def trigger_schedule(self, schedule_id: str, *, overlap: str | None = None) -> str | None:
        """Start a run now, paused schedule or not, by the schedule's overlap policy (or
        ``overlap``); returns its instance id, or ``None`` if the policy skipped it (or
        buffered it, with ``buffer_one``)."""
        sid = check_schedule_id(schedule_id)
        if overlap is not None:
            ScheduleSpec.of(every=1, overlap=overlap)  # checks the name
        return self.store.run(
            lambda tx: _schedules.trigger(tx, sid, now=self.clock.now(), overlap=overlap)
        )

    def backfill_schedule(self, schedule_id: str, start: datetime, end: datetime) -> list[str]:
        """Start the runs of the fire times from ``start`` to ``end`` (both included)
        that have none yet (past or future ones); returns their ids, oldest first."""
        sid = check_schedule_id(schedule_id)
        lo, hi = check_time(start, "start"), check_time(end, "end")
        if lo is None or hi is None or hi < lo:
            raise ValidationError("a backfill needs a start and an end, the end not before it")
        return self.store.run(lambda tx: _schedules.backfill(tx, sid, lo, hi, now=self.clock.now()))

    def schedules(
        self, *, orchestrator: str | Callable[..., Any] | None = None, id_prefix: str | None = None
    ) -> list[ScheduleInfo]:
        """The schedules (of ``orchestrator``, with ids starting ``id_prefix``), by id,
        each with its next fire times, pause and latest run."""
        name = None if orchestrator is None else name_of(orchestrator)
        prefix = check_text(id_prefix, "id_prefix")

        def read(r: Reader) -> list[ScheduleInfo]:
            rows = r.list_schedules(name, prefix)
            pauses = {p.name: p for p in r.standing_pauses(_schedules.SCHEDULE)}
            latest = [row.last_run for row in rows if row.last_run]
            statuses = r.statuses(latest) if latest else {}
            return [
                self._info(
                    row,
                    pauses.get(row.schedule_id),
                    [(row.last_run, statuses.get(row.last_run))] if row.last_run else [],
                )
                for row in rows
            ]

        return self.store.read(read)

    def schedule(self, schedule_id: str, *, runs: int = 10) -> ScheduleInfo:
        """One schedule, with its next fire times, pause, and latest ``runs`` runs."""
        sid = check_schedule_id(schedule_id)

        def read(r: Reader) -> ScheduleInfo:
            row = r.get_schedule(sid)
            if row is None:
                raise ScheduleNotFound(sid)
            pauses = r.standing_pauses(_schedules.SCHEDULE, [sid])
            found = r.query(Selection(id_prefix=f"{sid}@"), runs, None)
            return self._info(
                row, pauses[0] if pauses else None, [(i.instance_id, i.status) for i in found]
            )

        return self.store.read(read)

    def pause_schedule(
        self,
        schedule_id: str,
        reason: str | None = None,
        *,
        resume_at: datetime | None = None,
        by: str | None = None,
    ) -> bool:
        """Pause a schedule: no run starts until it is resumed (by
        :meth:`resume_schedule`, or at ``resume_at``); fire times that come meanwhile are
        skipped unless within ``catchup_window`` at resume. A standing pause, listed
        with the others. ``False`` if it was paused already."""
        sid = check_schedule_id(schedule_id)
        return self._pause_schedules([sid], reason, resume_at, by, strict=True) == 1

    def resume_schedule(
        self, schedule_id: str, reason: str | None = None, *, by: str | None = None
    ) -> bool:
        """Resume a paused schedule; ``False`` if it was not paused."""
        sid = check_schedule_id(schedule_id)
        return self._resume_schedules([sid], reason, by, strict=True) == 1

    def pause_schedules(
        self,
        *,
        orchestrator: str | Callable[..., Any] | None = None,
        id_prefix: str | None = None,
        reason: str | None = None,
        resume_at: datetime | None = None,
        by: str | None = None,
    ) -> int:
        """Pause every schedule (of ``orchestrator``, with ids starting ``id_prefix``);
        returns how many were not paused already."""
        ids = [
            s.schedule_id for s in self.schedules(orchestrator=orchestrator, id_prefix=id_prefix)
        ]
        return self._pause_schedules(ids, reason, resume_at, by) if ids else 0

    def resume_schedules(
        self,
        *,
        orchestrator: str | Callable[..., Any] | None = None,
        id_prefix: str | None = None,
        reason: str | None = None,
        by: str | None = None,
    ) -> int:
        """Resume every paused schedule (of ``orchestrator``, with ids starting
        ``id_prefix``); returns how many were paused."""
        ids = [
            s.schedule_id for s in self.schedules(orchestrator=orchestrator, id_prefix=id_prefix)
        ]
        return self._resume_schedules(ids, reason, by) if ids else 0

    def _pause_schedules(
        self,
        ids: list[str],
        reason: str | None,
        resume_at: datetime | None,
        by: str | None,
        strict: bool = False,
    ) -> int:
        at, why, actor = check_time(resume_at, "resume_at"), check_text(reason), self._by(by)
        return self.store.run(
            lambda tx: len(
                _schedules.pause(
                    tx, ids, reason=why, by=actor, resume_at=at, now=self.clock.now(), strict=strict
                )
            )
        )

    def _resume_schedules(
        self, ids: list[str], reason: str | None, by: str | None, strict: bool = False
    ) -> int:
        why, actor = check_text(reason), self._by(by)
        return self.store.run(
            lambda tx: len(
                _schedules.resume(
                    tx, ids, reason=why, by=actor, now=self.clock.now(), strict=strict
                )
            )
        )

    def _info(
        self,
        row: ScheduleRow,
        pause: StandingPauseRow | None,
        runs: list[tuple[str, Status | None]],
    ) -> ScheduleInfo:
        spec = ScheduleSpec.from_json(row.spec)
        nexts = itertools.islice(spec.fires(self.clock.now()), _NEXT_FIRES)
        return ScheduleInfo(
            schedule_id=row.schedule_id,
            orchestrator=row.orchestrator,
            input=loads_shown(row.input),
            every=None if spec.every is None else timedelta(seconds=spec.every),
            cron=spec.cron,
            timezone=spec.timezone,
            start_at=from_timestamp(spec.start_at),
            end_at=from_timestamp(spec.end_at),
            overlap=spec.overlap,
            catchup_window=timedelta(seconds=spec.catchup_window),
            jitter=None if spec.jitter is None else timedelta(seconds=spec.jitter),
            pause_on_failure=spec.pause_on_failure,
            created_at=from_timestamp(row.created_at),  # type: ignore[arg-type]
            updated_at=from_timestamp(row.updated_at),  # type: ignore[arg-type]
            next_fires=tuple(from_timestamp(t) for t in nexts),  # type: ignore[misc]
            pause=None if pause is None else _standing(pause),
            last_runs=tuple(ScheduleRun(i, parse_fire_time(i), s) for i, s in runs),
            buffered=from_timestamp(row.buffered),
        )

    # -- limits ------------------------------------------------------------------------

    def limit_activity(
        self,
        activity: str | Callable[..., Any],
        max_concurrent: int | None = None,
        per_second: float | None = None,
        reason: str | None = None,
        *,
        by: str | None = None,
    ) -> Limit:
        """Limit an activity across every worker: at most ``max_concurrent`` executions
        running at once, at most ``per_second`` starts in any second. Takes effect at
        once for executions not started yet (running ones finish); replaces a limit set
        before. Lifted by :meth:`remove_activity_limit`."""
        _limits.check_limit(max_concurrent, per_second)
        return self._limit(
            _control.ACTIVITY, name_of(activity), max_concurrent, per_second, reason, by
        )

    def remove_activity_limit(
        self, activity: str | Callable[..., Any], *, by: str | None = None
    ) -> bool:
        """Lift an activity's limit; ``False`` if it had none. (A limit declared in code
        comes back when a worker of that code starts.)"""
        return self._unlimit(_control.ACTIVITY, name_of(activity), by)

    def activity_limits(self) -> list[Limit]:
        """The activity limits, by name."""
        return [lim for lim in self.limits() if lim.kind == _control.ACTIVITY]

    def limit_orchestrator(
        self,
        orchestrator: str | Callable[..., Any],
        max_running: int,
        reason: str | None = None,
        *,
        by: str | None = None,
    ) -> Limit:
        """At most ``max_running`` instances of ``orchestrator`` RUNNING at once, across
        every worker; the others wait PENDING and start, highest ``priority`` first
        (see :meth:`start`), then in start order, as running ones finish."""
        _limits.check_limit(max_running, None, rate=False)
        return self._limit(
            _control.ORCHESTRATOR, name_of(orchestrator), max_running, None, reason, by
        )

    def remove_orchestrator_limit(
        self, orchestrator: str | Callable[..., Any], *, by: str | None = None
    ) -> bool:
        """Lift an orchestrator's limit; ``False`` if it had none."""
        return self._unlimit(_control.ORCHESTRATOR, name_of(orchestrator), by)

    def limits(self) -> list[Limit]:
        """Every limit (activities and orchestrators), by kind and name, with reason,
        actor and since when."""
        return [_limit(row) for row in self.store.read(lambda r: r.flow_limits())]

    def _limit(
        self,
        kind: str,
        name: str,
        max_concurrent: int | None,
        per_second: float | None,
        reason: str | None,
        by: str | None,
    ) -> Limit:
        why, actor = check_text(reason), self._by(by)
        self.store.run(
            lambda tx: _limits.set_limit(
                tx,
                kind,
                name,
                max_concurrent=max_concurrent,
                per_second=None if per_second is None else float(per_second),
                reason=why,
                by=actor,
                now=self.clock.now(),
            )
        )
        return next(lim for lim in self.limits() if (lim.kind, lim.name) == (kind, name))

    def _unlimit(self, kind: str, name: str, by: str | None) -> bool:
        actor = self._by(by)
        return self.store.run(lambda tx: _limits.remove_limit(tx, kind, name, by=actor))


def _given(value: Any, default: Any) -> Any:
    return default if value is None else value


def _standing(row: StandingPauseRow) -> StandingPause:
    return StandingPause(
        kind=row.kind,
        name=row.name,
        reason=row.reason,
        by=row.by,
        since=from_timestamp(row.since),  # type: ignore[arg-type]
        resume_at=from_timestamp(row.resume_at),
    )


def _limit(row: LimitRow) -> Limit:
    return Limit(
        kind=row.kind,
        name=row.name,
        max_concurrent=row.max_concurrent,
        per_second=row.per_second,
        reason=row.reason,
        by=row.by,
        since=from_timestamp(row.since),  # type: ignore[arg-type]
        source=row.source,
    )
