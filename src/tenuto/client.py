"""``Client`` and ``AsyncClient``: start, inspect, pause, resume and control instances."""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import getpass
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any, Concatenate, ParamSpec, TypeVar, Unpack

from . import _control, _pending, _served, tracing
from . import events as _events
from . import retention as _retention
from ._checks import check_resume_at, check_statuses, check_text, check_time
from ._checks import check_tags as check_tags  # re-exported (the gRPC service uses them)
from ._checks import check_version as check_version
from ._entity_client import EntityClient
from ._flow_client import FlowMethods, _standing
from ._ids import check_instance_id as check_instance_id  # re-exported: the id rules
from ._json import dumps, loads, loads_shown, shown
from ._wakeups import DONE, WORK
from .app import App, check_name, name_of
from .bulk import ACTIONS, BulkPreview
from .clock import SYSTEM_CLOCK, Clock
from .entities import is_entity_id
from .errors import (
    InstanceNotFound,
    InvalidCursor,
    InvalidType,
    UnknownOrchestrator,
    ValidationError,
    WaitTimeout,
)
from .events import EventsPage
from .filters import Filter, FilterArgs, selection
from .history import Event
from .retention import Retention
from .status import (
    LIVE,
    PAUSABLE,
    TERMINAL,
    Failure,
    HistoryEvent,
    InstanceStatus,
    Page,
    PauseInfo,
    StandingPause,
    Status,
    from_timestamp,
)
from .store import open_store
from .store.base import InstanceRow, Listener, Reader, Store, Tx
from .work import PendingWork, WorkerInfo

_TIME_FIELDS = ("fire_at", "resume_at")
MAX_PAGE = 1000
#: Seconds for which starts of an orchestrator do not check again that it is served.
_SERVED_RECHECK = 10.0
log = logging.getLogger("tenuto.client")


def _default_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _is_valid_id(instance_id: Any) -> bool:
    try:
        check_instance_id(instance_id)
    except ValidationError:
        return False
    return True


def _known_id(instance_id: Any) -> str:
    """An id to look up: one that could never have been created cannot be found."""
    try:
        return check_instance_id(instance_id)
    except ValidationError:
        raise InstanceNotFound(str(instance_id)) from None


def encode_cursor(row: InstanceRow) -> str:
    raw = json.dumps([row.created_at, row.instance_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, iid = json.loads(raw)
        if not isinstance(created, int | float) or not isinstance(iid, str):
            raise ValueError
        return float(created), iid
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor(
            f"invalid cursor {cursor[:40]!r}: pass back the next_cursor of a previous page"
        ) from None


def to_status(
    row: InstanceRow, held: Sequence[str] = (), standing_resume: float | None = None
) -> InstanceStatus:
    """The public snapshot of a stored instance row. ``standing_resume``: the scheduled
    resume of the standing pause of its orchestrator, which an instance it holds shows
    as its own (the standing pause resumes it then)."""
    pause = None
    if row.status is Status.PAUSED and row.pause_since is not None:
        resume_at = row.pause_resume_at
        if resume_at is None and row.pause_source == _control.ORCHESTRATOR:
            resume_at = standing_resume
        pause = PauseInfo(
            reason=row.pause_reason,
            by=row.pause_by,
            since=from_timestamp(row.pause_since),  # type: ignore[arg-type]
            resume_at=from_timestamp(resume_at),
            source=row.pause_source or "client",
        )
    return InstanceStatus(
        instance_id=row.instance_id,
        name=row.name,
        runtime_status=row.status,
        # Shown leniently: a value an older version stored too deep reads as its text.
        input=loads_shown(row.input),
        output=loads_shown(row.output),
        failure=None if row.failure is None else Failure.from_json(loads(row.failure)),
        custom_status=loads_shown(row.custom_status),
        created_at=from_timestamp(row.created_at),  # type: ignore[arg-type]
        updated_at=from_timestamp(row.updated_at),  # type: ignore[arg-type]
        completed_at=from_timestamp(row.completed_at),
        parent_instance_id=row.parent_instance_id,
        pause=pause,
        held_activities=tuple(held),
        version=row.version,
        tags=None if row.tags is None else loads(row.tags),
    )


def _standing_resumes(r: Reader, rows: Sequence[InstanceRow]) -> dict[str, float | None]:
    """The scheduled resume of the standing pause of each orchestrator that holds one of
    ``rows`` (one read, only if one of them is held so)."""
    names = sorted(
        {
            row.name
            for row in rows
            if row.status is Status.PAUSED and row.pause_source == _control.ORCHESTRATOR
        }
    )
    if not names:
        return {}
    return {sp.name: sp.resume_at for sp in r.standing_pauses(_control.ORCHESTRATOR, names)}


def _history_event(seq: int, event: Event) -> HistoryEvent:
    data = {key: shown(value) for key, value in event.data.items()}
    for key in _TIME_FIELDS:
        if isinstance(data.get(key), int | float):
            data[key] = from_timestamp(data[key]).isoformat()  # type: ignore[union-attr]
    return HistoryEvent(seq, event.type, from_timestamp(event.ts), data)  # type: ignore[arg-type]


class Client(FlowMethods, EntityClient):
    """A synchronous client of a tenuto database.

    ``db`` is a URL (``sqlite:///tenuto.db``, ``postgresql://...``); it defaults to
    ``$TENUTO_DB``, then ``sqlite:///tenuto.db``. ``actor`` is recorded as ``by`` on the
    pauses, resumes, terminations and rewinds this client makes (default ``user@host``).
    Give ``app`` to check orchestrator names locally when starting instances; without
    it, a name that no worker has registered is refused while any is registered
    (:class:`~tenuto.UnknownOrchestrator`), unless ``check_names=False``.
    """

    def __init__(
        self,
        db: str | None = None,
        *,
        app: App | None = None,
        store: Store | None = None,
        actor: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        check_names: bool = True,
    ) -> None:
        self._own_store = store is None
        self.store = store if store is not None else open_store(db)
        self.app = app
        self.actor = actor or _default_actor()
        self.clock = clock
        self._local = threading.local()
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        #: Whether :meth:`start` refuses a name no worker serves (see above).
        self.check_names = check_names
        #: Orchestrator name -> until when starts need not check it is served again
        #: (monotonic time).
        self._checked_until: dict[str, float] = {}

    def _by(self, by: str | None) -> str:
        return check_text(by, "an actor") or self.actor

    def close(self) -> None:
        """Close the database connections this client opened."""
        with self._lock:
            listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.close()
        if self._own_store:
            self.store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- starting and reading ----------------------------------------------------------

    def start(
        self,
        orchestrator: str | Callable[..., Any],
        input: Any = None,
        *,
        instance_id: str | None = None,
        start_at: datetime | None = None,
        version: str | None = None,
        tags: Mapping[str, str] | None = None,
        reuse: Status | str | Iterable[Status | str] | None = None,
        by: str | None = None,
        priority: int = 0,
    ) -> str:
        """Start an orchestration; returns its instance id.

        ``instance_id`` defaults to a random id; an id that is taken raises
        :class:`~tenuto.InstanceExists`, unless the instance that has it is in one of
        the ``reuse`` statuses: it is then replaced, in the same transaction (terminated
        if it is live, recorded as by ``by``, and purged). ``start_at`` delays the first
        step. ``version`` (a label such as ``"1.2"``) and ``tags`` (string keys to
        string values) are stored with the instance and shown in its status; they are
        kept across ``continue_as_new``. ``priority`` orders the PENDING instances of
        an orchestrator under a limit (:meth:`limit_orchestrator`): highest first.
        """
        ids = None if instance_id is None else [instance_id]
        many = partial(
            self.start_many,
            instance_ids=ids,
            start_at=start_at,
            reuse=reuse,
            by=by,
            priority=priority,
        )
        return many(orchestrator, [input], version=version, tags=tags)[0]

    def start_many(
        self,
        orchestrator: str | Callable[..., Any],
        inputs: Iterable[Any],
        *,
        instance_ids: Sequence[str] | None = None,
        start_at: datetime | None = None,
        version: str | None = None,
        tags: Mapping[str, str] | None = None,
        reuse: Status | str | Iterable[Status | str] | None = None,
        by: str | None = None,
        priority: int = 0,
    ) -> list[str]:
        """Start one orchestration per input, in one transaction; returns their ids.

        The way to start many at once: all of them are created, or (if an id is taken)
        none. ``instance_ids`` gives their ids (default: random ones); every instance
        gets ``version`` and ``tags``. ``reuse``, ``by`` and ``priority`` as in
        :meth:`start`.
        """
        if (
            not isinstance(priority, int)
            or isinstance(priority, bool)
            or not -(2**31) <= priority < 2**31
        ):
            raise ValidationError(
                f"priority must be a whole number from -2147483648 to 2147483647, not {priority!r}"
            )
        checked_version, checked_tags = check_version(version), check_tags(tags)
        replaceable, actor = check_statuses(reuse), self._by(by)
        name = self._orchestrator_name(orchestrator)
        texts = [dumps(i, f"the input of orchestrator {name!r}") for i in inputs]
        if instance_ids is None:
            ids = [uuid.uuid4().hex for _ in texts]
        else:
            ids = [check_instance_id(i) for i in instance_ids]
            if len(ids) != len(texts):
                raise ValidationError(f"{len(ids)} instance ids for {len(texts)} inputs")
            if len(set(ids)) != len(ids):
                raise ValidationError("the instance ids must be distinct")
        at = check_time(start_at, "start_at")
        if not ids:
            return ids
        trace_parent = tracing.start_span(name)

        def start(tx: Tx) -> None:
            now = self.clock.now()
            _control.replace(tx, ids, replaceable, by=actor, now=now)
            _control.start(
                tx,
                name=name,
                inputs=list(zip(ids, texts, strict=True)),
                start_at=at,
                now=now,
                version=checked_version,
                tags=checked_tags,
                trace_parent=trace_parent,
            )
            if priority:
                tx.set_priority(ids, priority)

        self.store.run(start)
        self._warn_unserved(name)
        return ids

    def _warn_unserved(self, name: str) -> None:
        """Log a warning if no live worker serves orchestrator ``name``: the start is
        accepted (a worker may come later), but a typo would wait forever unseen. A
        name is checked once in a while, not at every start (starts stay one write)."""
        if time.monotonic() < self._checked_until.get(name, 0.0):
            return
        self._checked_until[name] = time.monotonic() + _SERVED_RECHECK

        def read(r: Reader) -> str | None:
            workers = r.workers(self.clock.now())
            known = r.known_names(_control.ORCHESTRATOR)
            return _served.unserved(workers, known, _control.ORCHESTRATOR, name)

        warning = self.store.read(read)
        if warning is not None:
            log.warning("%s: it waits until one does", warning)

    def _orchestrator_name(self, orchestrator: str | Callable[..., Any]) -> str:
        if self.app is not None:
            return self.app.get_orchestrator(orchestrator).name
        if isinstance(orchestrator, str):
            name = check_name(orchestrator, "orchestrator name")
        else:
            name = name_of(orchestrator)
        if not self.check_names:
            return name
        known = self.store.read(lambda r: r.known_names("orchestrator"))
        if known and name not in known:
            raise UnknownOrchestrator(name, known)
        return name

    def status(self, instance_id: str) -> InstanceStatus:
        """The instance's current status; :class:`~tenuto.InstanceNotFound` if unknown."""
        instance_id = _known_id(instance_id)

        def read(
            r: Reader,
        ) -> tuple[InstanceRow | None, dict[str, list[str]], dict[str, float | None]]:
            row = r.get_instance(instance_id)
            # Only a RUNNING instance can be waiting on a held activity.
            running = row is not None and row.status is Status.RUNNING
            held = r.held_activities([instance_id]) if running else {}
            return row, held, _standing_resumes(r, [row] if row else [])

        row, held, resumes = self.store.read(read)
        if row is None:
            raise InstanceNotFound(instance_id)
        return to_status(row, held.get(instance_id, ()), resumes.get(row.name))

    def history(self, instance_id: str) -> list[HistoryEvent]:
        """The instance's history events, oldest first."""
        instance_id = _known_id(instance_id)

        def read(r: Reader) -> list[Event]:
            if r.get_instance(instance_id) is None:
                raise InstanceNotFound(instance_id)
            return r.load_history(instance_id)

        return [_history_event(i, e) for i, e in enumerate(self.store.read(read))]

    def query(
        self,
        filter: Filter | None = None,
        *,
        limit: int = 100,
        cursor: str | None = None,
        **where: Unpack[FilterArgs],
    ) -> Page[InstanceStatus]:
        """Instances matching ``filter`` (or the same conditions given as keyword
        arguments: ``status``, ``name``, ``created_from``, ``created_to``,
        ``id_prefix``), newest first, one page at a time.

        Pass ``next_cursor`` of a page as ``cursor`` to get the next one.
        """
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be an int from 1 to {MAX_PAGE}")
        chosen = selection(filter, where)
        after = None if cursor is None else decode_cursor(cursor)

        def read(
            r: Reader,
        ) -> tuple[list[InstanceRow], dict[str, list[str]], dict[str, float | None]]:
            rows = r.query(chosen, limit + 1, after)
            held = r.held_activities([row.instance_id for row in rows[:limit]])
            return rows, held, _standing_resumes(r, rows[:limit])

        rows, held, resumes = self.store.read(read)
        more = len(rows) > limit
        rows = rows[:limit]
        items = [to_status(r, held.get(r.instance_id, ()), resumes.get(r.name)) for r in rows]
        return Page(items, encode_cursor(rows[-1]) if more else None)

    def count(self, filter: Filter | None = None, **where: Unpack[FilterArgs]) -> dict[Status, int]:
        """How many instances matching the filter there are, per status."""
        chosen = selection(filter, where)
        return self.store.read(lambda r: r.count_by_status(chosen))

    def wait(self, instance_id: str, timeout: float | None = None) -> InstanceStatus:
        """Block until the instance has finished (a PAUSED instance has not); returns its
        final status, or raises :class:`~tenuto.WaitTimeout` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        listener = self._done_listener()
        while True:
            st = self.status(instance_id)
            if st.is_terminal:
                return st
            remaining = 1.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(
                    f"instance {instance_id!r} is still {st.runtime_status.value} after {timeout} s"
                )
            listener.wait(min(remaining, 1.0))

    def wait_many(
        self, instance_ids: Iterable[str], timeout: float | None = None
    ) -> list[InstanceStatus]:
        """Block until every one of ``instance_ids`` has finished; returns their final
        statuses in the order given (a repeated id is repeated).

        One read per wake-up covers every instance still awaited, where calling
        :meth:`wait` on each reads each once more. Raises
        :class:`~tenuto.InstanceNotFound` at once for an unknown id, and
        :class:`~tenuto.WaitTimeout` after ``timeout`` seconds if any is unfinished
        (the statuses that were final by then are lost with it: call again to wait on).
        """
        ids = [_known_id(i) for i in instance_ids]
        deadline = None if timeout is None else time.monotonic() + timeout
        listener = self._done_listener()
        pending = self._check_known(ids)
        done: dict[str, InstanceStatus] = {}
        while pending := self._collect_finished(pending, done):
            remaining = 1.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise _many_unfinished(pending, done, timeout)
            listener.wait(min(remaining, 1.0))
        return [done[iid] for iid in ids]

    def _check_known(self, ids: list[str]) -> list[str]:
        """``ids`` without repeats; :class:`~tenuto.InstanceNotFound` for an unknown one."""
        unique = list(dict.fromkeys(ids))
        known = self.store.read(lambda r: r.statuses(unique))
        for iid in unique:
            if iid not in known:
                raise InstanceNotFound(iid)
        return unique

    def _collect_finished(self, pending: list[str], done: dict[str, InstanceStatus]) -> list[str]:
        """Move the finished ones of ``pending`` into ``done``; returns the rest.

        Reads a window at the head of ``pending``, and the next only once a window has
        finished whole: a wake-up then costs a bounded read however many are awaited,
        and instances that finish roughly in the order given are collected in passing.
        """
        for start in range(0, len(pending), _WAIT_WINDOW):
            window = pending[start : start + _WAIT_WINDOW]
            # A finished instance has no held activities to show: to_status needs none.
            for row in self.store.read(partial(_finished, window)):
                done[row.instance_id] = to_status(row, ())
            left = [iid for iid in window if iid not in done]
            if left:
                return left + pending[start + _WAIT_WINDOW :]
        return []

    def _done_listener(self) -> Listener:
        """This thread's listener for finished instances (kept for the next wait)."""
        listener: Listener | None = getattr(self._local, "listener", None)
        if listener is None:
            listener = self._local.listener = self.store.listener([DONE])
            with self._lock:
                self._listeners.append(listener)
        return listener

    # -- controlling -------------------------------------------------------------------

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Send an external event; a paused instance receives it after resume, in order."""
        instance_id, name = _known_id(instance_id), check_name(name, "event name")
        dumps(data, f"the data of event {name!r}")
        self.store.run(
            lambda tx: _control.raise_event(tx, instance_id, name, data, self.clock.now())
        )

    def pause(
        self,
        instance_id: str,
        reason: str | None = None,
        *,
        resume_at: datetime | None = None,
        by: str | None = None,
    ) -> bool:
        """Pause a PENDING or RUNNING instance; ``True`` if it changed, ``False`` if it
        was already paused. When this returns, nothing of the instance starts until it is
        resumed (by :meth:`resume`, or by itself at ``resume_at``).

        On an instance that is paused already, ``resume_at`` sets (or moves) the time it
        resumes by itself, whatever paused it, and the call returns ``True``; the pause
        keeps its reason and actor, and the change is recorded in the history (an
        ``ExecutionSuspended`` event with ``rescheduled: true``).

        An entity id, ``@name@key``, pauses that entity: its operations queue, in
        order, until it is resumed (see :mod:`tenuto.entities`)."""
        if is_entity_id(instance_id):
            return self._pause_entity(instance_id, reason, resume_at, by)
        instance_id = _known_id(instance_id)
        at = check_resume_at(resume_at, self.clock.now())
        why, actor = check_text(reason), self._by(by)
        changed = self.store.run(
            lambda tx: _control.pause(
                tx,
                [instance_id],
                reason=why,
                by=actor,
                resume_at=at,
                now=self.clock.now(),
                strict=True,
            )
        )
        return bool(changed)

    def resume(
        self,
        instance_id: str,
        reason: str | None = None,
        *,
        by: str | None = None,
        deliver_failure: bool = False,
    ) -> bool:
        """Resume a PAUSED instance (or entity, ``@name@key``); ``True`` if it changed,
        ``False`` if it was not paused.

        An instance paused by a call that failed its last attempt (``pause.source ==
        "failure"``, see ``RetryPolicy.on_exhausted``) runs the call again with a fresh
        attempt budget; with ``deliver_failure=True``, its code gets the failure instead
        (``ActivityFailed`` where it waits on the call)."""
        if not isinstance(deliver_failure, bool):
            raise InvalidType("deliver_failure must be True or False")
        if is_entity_id(instance_id):
            if deliver_failure:
                raise ValidationError(
                    f"{instance_id} is an entity: it has no failed call to deliver; "
                    "resume it without deliver_failure"
                )
            return self._resume_entity(instance_id, reason, by)
        instance_id = _known_id(instance_id)
        why, actor = check_text(reason), self._by(by)
        changed = self.store.run(
            lambda tx: _control.resume(
                tx,
                [instance_id],
                reason=why,
                by=actor,
                now=self.clock.now(),
                strict=True,
                deliver_failure=deliver_failure,
            )
        )
        return bool(changed)

    def terminate(
        self,
        instance_id: str,
        reason: str | None = None,
        *,
        by: str | None = None,
        recursive: bool = True,
        output: Any = None,
    ) -> None:
        """End a live instance (paused ones included) as TERMINATED, with its
        sub-orchestrations unless ``recursive=False``. ``output``, a JSON value, is
        stored as the instance's output (its sub-orchestrations end without one)."""
        instance_id = _known_id(instance_id)
        why, actor = check_text(reason), self._by(by)
        text = None if output is None else dumps(output, "the output of a terminated instance")
        self.store.run(
            lambda tx: _control.terminate(
                tx,
                [instance_id],
                reason=why,
                by=actor,
                now=self.clock.now(),
                strict=True,
                recursive=recursive,
                output=text,
            )
        )

    def rewind(self, instance_id: str, reason: str | None = None, *, by: str | None = None) -> None:
        """Run a FAILED instance again from before its failure.

        The failure and the failed activity calls are forgotten, and the instance is
        RUNNING again: a worker replays it, and the calls that failed run again, while
        those that succeeded keep their results and do not run again. Failed
        sub-orchestrations are rewound with it. The rewind is recorded in the history
        (an ``ExecutionRewound`` event with ``reason`` and ``by``), like a pause.

        :class:`~tenuto.InstanceNotFinished` if the instance is live,
        :class:`~tenuto.InstanceFinished` if it completed or was terminated,
        :class:`~tenuto.InstanceNotFound` if it is unknown.
        """
        instance_id = _known_id(instance_id)
        why, actor = check_text(reason), self._by(by)
        self.store.run(
            lambda tx: _control.rewind(tx, instance_id, reason=why, by=actor, now=self.clock.now())
        )

    def restart(
        self,
        instance_id: str,
        new_instance_id: bool = False,
        *,
        reason: str | None = None,
        by: str | None = None,
    ) -> str:
        """Start a finished instance again from the beginning, with its original input,
        version and tags; returns the id of the new run. The new run's history starts
        with the restart (an ``ExecutionRestarted`` event with ``reason`` and ``by``).

        Under the same id by default (the finished instance and its history are replaced,
        in one transaction), or under a new random id with ``new_instance_id=True`` (the
        finished instance stays). :class:`~tenuto.InstanceNotFinished` if the instance
        is live, :class:`~tenuto.InstanceNotFound` if it is unknown.
        """
        instance_id = _known_id(instance_id)
        why, actor = check_text(reason), self._by(by)
        new_id = uuid.uuid4().hex if new_instance_id else instance_id
        self.store.run(
            lambda tx: _control.restart(
                tx, instance_id, new_id, now=self.clock.now(), reason=why, by=actor
            )
        )
        return new_id

    def purge(self, instance_id: str, *, recursive: bool = False) -> None:
        """Delete a finished instance and its history; with ``recursive=True``, its
        finished sub-orchestrations too, at every depth."""
        instance_id = _known_id(instance_id)
        self.store.run(
            lambda tx: _control.purge(tx, [instance_id], strict=True, recursive=recursive)
        )

    def pause_many(
        self,
        filter: Filter | None = None,
        *,
        reason: str | None = None,
        resume_at: datetime | None = None,
        by: str | None = None,
        **where: Unpack[FilterArgs],
    ) -> int:
        """Pause every PENDING or RUNNING instance matching the filter (given as
        ``filter`` or as keyword arguments, as in :meth:`query`); returns how many
        changed."""
        chosen = selection(filter, where, PAUSABLE)
        at = check_resume_at(resume_at, self.clock.now())
        why, actor = check_text(reason), self._by(by)
        return self.store.run(
            lambda tx: len(
                _control.pause(
                    tx,
                    tx.select_ids(chosen),
                    reason=why,
                    by=actor,
                    resume_at=at,
                    now=self.clock.now(),
                )
            )
        )

    def resume_many(
        self,
        filter: Filter | None = None,
        *,
        reason: str | None = None,
        by: str | None = None,
        **where: Unpack[FilterArgs],
    ) -> int:
        """Resume every PAUSED instance matching the filter; returns how many changed."""
        chosen = selection(filter, where, (Status.PAUSED,))
        why, actor = check_text(reason), self._by(by)
        return self.store.run(
            lambda tx: len(
                _control.resume(
                    tx, tx.select_ids(chosen), reason=why, by=actor, now=self.clock.now()
                )
            )
        )

    def terminate_many(
        self,
        filter: Filter | None = None,
        *,
        reason: str | None = None,
        by: str | None = None,
        recursive: bool = True,
        **where: Unpack[FilterArgs],
    ) -> int:
        """Terminate every live instance matching the filter; returns how many."""
        chosen = selection(filter, where, LIVE)
        why, actor = check_text(reason), self._by(by)
        return self.store.run(
            lambda tx: len(
                _control.terminate(
                    tx,
                    tx.select_ids(chosen),
                    reason=why,
                    by=actor,
                    now=self.clock.now(),
                    recursive=recursive,
                )
            )
        )

    def purge_many(
        self,
        filter: Filter | None = None,
        *,
        instance_ids: Iterable[str] | None = None,
        recursive: bool = False,
        **where: Unpack[FilterArgs],
    ) -> int:
        """Delete every finished instance matching the filter; returns how many.

        ``instance_ids`` limits them to those instances (unknown and live ones are
        passed over); ``recursive=True`` deletes their finished sub-orchestrations too,
        at every depth (counted)."""
        chosen = selection(filter, where, TERMINAL)
        if instance_ids is None:
            return self.store.run(
                lambda tx: _control.purge(tx, tx.select_ids(chosen), recursive=recursive)
            )
        known = list(dict.fromkeys(i for i in instance_ids if _is_valid_id(i)))

        def purge(tx: Tx) -> int:
            # A few hundred ids per query: a query's parameters are bounded.
            parts = [known[i : i + _IDS_PER_QUERY] for i in range(0, len(known), _IDS_PER_QUERY)]
            ids = [i for part in parts for i in tx.select_ids(replace(chosen, ids=tuple(part)))]
            return _control.purge(tx, ids, recursive=recursive) if ids else 0

        return self.store.run(purge)

    def preview_many(
        self,
        action: str,
        filter: Filter | None = None,
        *,
        sample: int = 5,
        **where: Unpack[FilterArgs],
    ) -> BulkPreview:
        """How many instances :meth:`pause_many`, :meth:`resume_many`,
        :meth:`terminate_many` or :meth:`purge_many` (``action``: ``"pause"``,
        ``"resume"``, ``"terminate"``, ``"purge"``) would change with this filter, and
        the ids of the first ``sample`` of them; nothing changes."""
        if action not in ACTIONS:
            raise ValidationError(
                f"unknown bulk action {action!r}: use one of {', '.join(ACTIONS)}"
            )
        if not isinstance(sample, int) or not 0 <= sample <= MAX_PAGE:
            raise ValidationError(f"sample must be an int from 0 to {MAX_PAGE}")
        chosen = selection(filter, where, ACTIONS[action])
        # Of the statuses the filter names, only those the action applies to count.
        statuses = tuple(s for s in chosen.statuses if s in ACTIONS[action])
        if not statuses:
            return BulkPreview(action, 0, ())
        chosen = replace(chosen, statuses=statuses)

        def read(r: Reader) -> BulkPreview:
            count = sum(r.count_by_status(chosen).values())
            rows = r.query(chosen, sample, None) if sample else []
            return BulkPreview(action, count, tuple(row.instance_id for row in rows))

        return self.store.read(read, snapshot=True)

    # -- retention ---------------------------------------------------------------------

    def set_retention(self, policy: Retention | str | Mapping[str, Any] | None) -> None:
        """Store a retention policy in the database: every worker of it applies this one
        (it wins over their ``--retain`` and ``App(retention=...)``); ``None`` removes
        it. ``policy`` is a :class:`~tenuto.Retention`, its text such as
        ``"COMPLETED=30d,FAILED=90d"``, or a mapping of rules."""
        checked = None if policy is None else Retention.of(policy)
        self.store.run(lambda tx: _retention.store_policy(tx, checked))

    def retention(self) -> Retention | None:
        """The retention policy stored in the database (``None``: none is stored, and
        each worker applies its own)."""
        return _retention.stored(self.store)

    # -- standing pauses ---------------------------------------------------------------

    def pause_orchestrator(
        self,
        orchestrator: str | Callable[..., Any],
        reason: str | None = None,
        *,
        resume_at: datetime | None = None,
        by: str | None = None,
        force: bool = False,
    ) -> bool:
        """Pause every instance of an orchestrator: those running now, and those started
        while the pause stands (starts are accepted and held). ``True`` if the pause is
        new, ``False`` if one stood already. Ended by :meth:`resume_orchestrator` or at
        ``resume_at``. A name no worker has registered and no instance uses is refused
        (:class:`~tenuto.ValidationError`, naming the known ones) unless ``force``."""
        name = name_of(orchestrator)
        return self._pause_type(_control.ORCHESTRATOR, name, reason, resume_at, by, force)

    def resume_orchestrator(
        self,
        orchestrator: str | Callable[..., Any],
        reason: str | None = None,
        *,
        by: str | None = None,
    ) -> bool:
        """End a standing orchestrator pause and resume exactly the instances it paused
        (one paused on its own stays paused). ``False`` if no such pause stood."""
        return self._resume_type(_control.ORCHESTRATOR, name_of(orchestrator), reason, by)

    def pause_activity(
        self,
        activity: str | Callable[..., Any],
        reason: str | None = None,
        *,
        resume_at: datetime | None = None,
        by: str | None = None,
        force: bool = False,
    ) -> bool:
        """Hold every execution of an activity, in every orchestration: queued ones and
        retries do not start; running ones finish. Instances waiting on it stay RUNNING
        and list it in ``held_activities``. ``False`` if such a pause stood already. A
        name no worker has registered is refused unless ``force`` (as in
        :meth:`pause_orchestrator`)."""
        name = name_of(activity)
        return self._pause_type(_control.ACTIVITY, name, reason, resume_at, by, force)

    def resume_activity(
        self,
        activity: str | Callable[..., Any],
        reason: str | None = None,
        *,
        by: str | None = None,
    ) -> bool:
        """End a standing activity pause; held executions start in the order they were
        scheduled. ``False`` if no such pause stood."""
        return self._resume_type(_control.ACTIVITY, name_of(activity), reason, by)

    def standing_pauses(self) -> list[StandingPause]:
        """The standing pauses, oldest first, with reason, actor, since and resume time."""
        return [_standing(r) for r in self.store.read(lambda r: r.standing_pauses())]

    def events(self, after: int = 0, *, limit: int = 100, wait: float = 0.0) -> EventsPage:
        """The tracking records (every state change, whoever made it) after the record
        numbered ``after``, oldest first, at most ``limit``; with ``wait``, waits up to
        that many seconds for one to come. Pass the page's ``next_cursor`` as ``after``
        to read on. Records are numbered once ``tenuto serve`` or ``tenuto worker``
        drains them (see :mod:`tenuto.events`)."""
        return _events.read(self.store, after, limit, wait)

    def pending_work(self, instance_id: str) -> PendingWork:
        """What the instance has in flight: activities running now and the workers
        running them, results waiting for the orchestration (a paused instance takes
        them after its resume), activities held, timers, awaited events, and
        sub-orchestrations; ``drained`` is ``True`` once nothing of it (its
        sub-orchestrations included) is running. :class:`~tenuto.InstanceNotFound` if
        unknown."""
        instance_id = _known_id(instance_id)
        work = self.store.read(
            lambda r: _pending.pending_work(r, instance_id, self.clock.now()), snapshot=True
        )
        if work is None:
            raise InstanceNotFound(instance_id)
        return work

    def wait_drained(self, instance_id: str, timeout: float | None = None) -> PendingWork:
        """Block until nothing of the instance is running (see :meth:`pending_work`);
        returns its pending work then. After a pause, that is the moment to do the
        maintenance: the instance is paused and quiet. Raises
        :class:`~tenuto.WaitTimeout` after ``timeout`` seconds, naming what still runs."""
        deadline = None if timeout is None else time.monotonic() + timeout
        listener = self.store.listener([WORK, DONE])
        try:
            while True:
                work = self.pending_work(instance_id)
                if work.drained:
                    return work
                remaining = 1.0 if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(_not_drained(work, timeout))
                # A finished activity's result wakes this; the poll covers the children.
                listener.wait(min(remaining, 0.25))
        finally:
            listener.close()

    def workers(self) -> list[WorkerInfo]:
        """The live workers, by id: host, process, what they serve, how many
        activities they run. A worker gone for longer than its lease is not listed."""
        rows = self.store.read(lambda r: r.workers(self.clock.now()))
        return [_pending.worker_info(row) for row in rows]

    def _pause_type(
        self,
        kind: str,
        name: str,
        reason: str | None,
        resume_at: datetime | None,
        by: str | None,
        force: bool = False,
    ) -> bool:
        at = check_resume_at(resume_at, self.clock.now())
        why, actor = check_text(reason), self._by(by)

        def pause(tx: Tx) -> bool:
            if not force:
                _served.check_pausable_name(tx, kind, name)
            return _control.pause_type(
                tx, kind, name, reason=why, by=actor, resume_at=at, now=self.clock.now()
            )

        return self.store.run(pause)

    def _resume_type(self, kind: str, name: str, reason: str | None, by: str | None) -> bool:
        why, actor = check_text(reason), self._by(by)
        return self.store.run(
            lambda tx: _control.resume_type(
                tx, kind, name, reason=why, by=actor, now=self.clock.now()
            )
        )


P = ParamSpec("P")
R = TypeVar("R")


def _in_thread(
    method: Callable[Concatenate[Client, P], R],
) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, R]]:
    """``method`` of :class:`Client` as a coroutine method of :class:`AsyncClient`, run in
    a thread (``asyncio.to_thread``) so that the event loop never blocks. It keeps the
    method's signature for type checkers (a ``ParamSpec``), for ``inspect.signature``
    and ``help()`` (``__wrapped__``), and its docstring."""

    @functools.wraps(method)
    async def call(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(method, self._client, *args, **kwargs)

    return call


class AsyncClient:
    """The same operations as :class:`Client`, as coroutines, with the same signatures.

    Database calls run in a thread (``asyncio.to_thread``) so the event loop never
    blocks; :meth:`wait` and :meth:`wait_many` poll without holding a thread.
    """

    def __init__(
        self,
        db: str | None = None,
        *,
        app: App | None = None,
        store: Store | None = None,
        actor: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        check_names: bool = True,
    ) -> None:
        self._client = Client(
            db, app=app, store=store, actor=actor, clock=clock, check_names=check_names
        )

    @property
    def store(self) -> Store:
        return self._client.store

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    close = _in_thread(Client.close)
    start = _in_thread(Client.start)
    start_many = _in_thread(Client.start_many)
    status = _in_thread(Client.status)
    history = _in_thread(Client.history)
    query = _in_thread(Client.query)
    count = _in_thread(Client.count)
    raise_event = _in_thread(Client.raise_event)
    pause = _in_thread(Client.pause)
    resume = _in_thread(Client.resume)
    terminate = _in_thread(Client.terminate)
    purge = _in_thread(Client.purge)
    rewind = _in_thread(Client.rewind)
    restart = _in_thread(Client.restart)
    pause_many = _in_thread(Client.pause_many)
    resume_many = _in_thread(Client.resume_many)
    terminate_many = _in_thread(Client.terminate_many)
    purge_many = _in_thread(Client.purge_many)
    pause_orchestrator = _in_thread(Client.pause_orchestrator)
    resume_orchestrator = _in_thread(Client.resume_orchestrator)
    pause_activity = _in_thread(Client.pause_activity)
    resume_activity = _in_thread(Client.resume_activity)
    standing_pauses = _in_thread(Client.standing_pauses)
    set_retention = _in_thread(Client.set_retention)
    retention = _in_thread(Client.retention)
    events = _in_thread(Client.events)
    create_schedule = _in_thread(Client.create_schedule)
    update_schedule = _in_thread(Client.update_schedule)
    delete_schedule = _in_thread(Client.delete_schedule)
    trigger_schedule = _in_thread(Client.trigger_schedule)
    backfill_schedule = _in_thread(Client.backfill_schedule)
    schedules = _in_thread(Client.schedules)
    schedule = _in_thread(Client.schedule)
    pause_schedule = _in_thread(Client.pause_schedule)
    resume_schedule = _in_thread(Client.resume_schedule)
    pause_schedules = _in_thread(Client.pause_schedules)
    resume_schedules = _in_thread(Client.resume_schedules)
    limit_activity = _in_thread(Client.limit_activity)
    remove_activity_limit = _in_thread(Client.remove_activity_limit)
    activity_limits = _in_thread(Client.activity_limits)
    limit_orchestrator = _in_thread(Client.limit_orchestrator)
    remove_orchestrator_limit = _in_thread(Client.remove_orchestrator_limit)
    limits = _in_thread(Client.limits)
    signal_entity = _in_thread(Client.signal_entity)
    get_entity = _in_thread(Client.get_entity)
    query_entities = _in_thread(Client.query_entities)
    clean_entity_storage = _in_thread(Client.clean_entity_storage)
    pause_entity_type = _in_thread(Client.pause_entity_type)
    resume_entity_type = _in_thread(Client.resume_entity_type)
    pending_work = _in_thread(Client.pending_work)
    workers = _in_thread(Client.workers)
    preview_many = _in_thread(Client.preview_many)

    async def wait_drained(self, instance_id: str, timeout: float | None = None) -> PendingWork:
        """Wait until nothing of the instance is running (see
        :meth:`Client.wait_drained`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = 0.005
        while True:
            work = await self.pending_work(instance_id)
            if work.drained:
                return work
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(_not_drained(work, timeout))
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, 0.25)

    async def wait_many(
        self, instance_ids: Iterable[str], timeout: float | None = None
    ) -> list[InstanceStatus]:
        """Wait until every instance finishes; their final statuses in the order given
        (see :meth:`Client.wait_many`)."""
        ids = [_known_id(i) for i in instance_ids]
        deadline = None if timeout is None else time.monotonic() + timeout
        pending = await asyncio.to_thread(self._client._check_known, ids)
        done: dict[str, InstanceStatus] = {}
        interval = 0.005
        while pending := await asyncio.to_thread(self._client._collect_finished, pending, done):
            if deadline is not None and time.monotonic() >= deadline:
                raise _many_unfinished(pending, done, timeout)
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, 0.25)
        return [done[iid] for iid in ids]

    async def wait(self, instance_id: str, timeout: float | None = None) -> InstanceStatus:
        """Wait until the instance finishes (PAUSED is not finished)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = 0.005
        while True:
            st = await self.status(instance_id)
            if st.is_terminal:
                return st
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"instance {instance_id!r} is still {st.runtime_status.value} after {timeout} s"
                )
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, 0.25)


#: How many ids :meth:`Client.purge_many` puts in one query.
_IDS_PER_QUERY = 500
#: How many awaited instances :meth:`Client.wait_many` reads at once.
_WAIT_WINDOW = 64


def _finished(ids: list[str], r: Reader) -> list[InstanceRow]:
    return r.finished_instances(ids)


def _not_drained(work: PendingWork, timeout: float | None) -> str:
    running = [f"{a.name} (task {a.task_id})" for a in work.running]
    running += [f"sub-orchestration {c.instance_id}" for c in work.children if not c.drained]
    return (
        f"instance {work.instance_id!r} still runs {', '.join(running)} after {timeout} s; "
        "wait longer, or see it with pending_work"
    )


def _many_unfinished(
    pending: list[str], done: dict[str, InstanceStatus], timeout: float | None
) -> WaitTimeout:
    return WaitTimeout(
        f"{len(pending)} of {len(pending) + len(done)} instances are still unfinished after "
        f"{timeout} s (the first: {pending[0]!r}); the finished ones stay finished: wait again "
        "to collect them"
    )
