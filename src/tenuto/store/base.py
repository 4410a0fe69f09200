"""The seam between the engine and storage.

Engine code (client operations, orchestration steps, activity outcomes) is written once against
:class:`Tx`, a transaction that offers the primitive reads and writes the engine needs,
in batches. Each backend implements it with its own SQL; nothing above this package
knows which database it talks to.

Every state change the engine makes happens inside one ``store.transaction()``: it
commits completely or not at all, so a crash at any line leaves a state from which the
engine continues.

Times are epoch seconds (UTC floats) throughout the seam.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias, TypeVar
from urllib.parse import SplitResult, urlsplit

from .._wakeups import TOPICS, WORK
from ..errors import ValidationError
from ..history import Event, Message
from ..status import Status
from .entity_base import EntityReads, EntityWrites
from .flow import FlowReader, FlowTx
from .outbox import OutboxReads, OutboxWrites

T = TypeVar("T")
log = logging.getLogger("tenuto.store")

#: Instance columns an engine update may set.
INSTANCE_FIELDS = frozenset(
    {
        "status",
        "execution_id",
        "generation",
        "input",
        "output",
        "failure",
        "custom_status",
        "updated_at",
        "started_at",
        "completed_at",
        "pause_reason",
        "pause_by",
        "pause_since",
        "pause_resume_at",
        "pause_source",
        "history_len",
        "next_due",
        "lease",
        "lease_until",
        "claims",
        "version",
        "awaiting",
    }
)


#: Orchestrator name -> the versions a claim may take (names not listed: any version).
Versions: TypeAlias = Mapping[str, Sequence[str]] | None


@dataclass(slots=True)
class InstanceRow:
    """One row of the instances table. JSON columns hold JSON text."""

    instance_id: str
    name: str
    status: Status
    execution_id: str
    generation: int = 0
    input: str | None = None
    output: str | None = None
    failure: str | None = None
    custom_status: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    started_at: float | None = None
    completed_at: float | None = None
    start_at: float | None = None
    parent_instance_id: str | None = None
    parent_execution_id: str | None = None
    parent_task_id: int | None = None
    pause_reason: str | None = None
    pause_by: str | None = None
    pause_since: float | None = None
    pause_resume_at: float | None = None
    pause_source: str | None = None
    history_len: int = 0
    next_due: float | None = None
    lease: str | None = None
    lease_until: float | None = None
    claims: int = 0
    #: The version the instance was started with (Durable Task SDKs version orchestrations).
    version: str | None = None
    #: Its tags, a JSON object of strings (``None``: no tags).
    tags: str | None = None
    #: The W3C ``traceparent`` of the span it was started under (``None``: not traced).
    trace_parent: str | None = None
    #: The events its code waits for (JSON text). Written by steps, read apart
    #: (:meth:`Reader.awaiting`): not among the columns an instance read returns.
    awaiting: str | None = None


@dataclass(slots=True)
class ActivityRow:
    """A scheduled activity execution (one attempt at a time)."""

    id: int
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None
    retry: str | None
    attempt: int
    created_at: float
    lease: str | None = None
    #: The W3C ``traceparent`` of its orchestration's span (``None``: not traced).
    trace_parent: str | None = None


@dataclass(slots=True)
class StandingPauseRow:
    """A standing pause of every instance of an orchestrator, or every call of an
    activity (``kind`` is ``"orchestrator"`` or ``"activity"``)."""

    kind: str
    name: str
    reason: str | None
    by: str | None
    since: float
    resume_at: float | None


@dataclass(slots=True)
class WorkRow:
    """A queued or running activity execution, as pending work shows it."""

    instance_id: str
    task_id: int
    name: str
    attempt: int
    #: Held by a pause of its instance (or by a standing activity pause).
    held: bool
    #: Its activity type is under a standing pause.
    type_held: bool
    #: The lease of the worker running it (``None``: not started).
    lease: str | None
    #: When the attempt holding the lease started.
    started_at: float | None
    #: When it may start, or (while leased) when its lease runs out.
    visible_at: float


@dataclass(slots=True)
class WorkerRow:
    """A worker's heartbeat: who it is, what it serves, how busy it is. ``kind`` is
    ``"tenuto"`` or ``"sdk"`` (a Durable Task SDK worker connected over gRPC); the
    name lists are JSON text (``None``: any name)."""

    id: str
    host: str
    pid: int
    kind: str
    started_at: float
    last_seen: float
    lease_seconds: float
    orchestrators: str | None
    activities: str | None
    running: int


@dataclass(slots=True)
class NewActivity:
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None
    retry: str | None
    visible_at: float
    held: bool
    trace_parent: str | None = None


@dataclass(slots=True)
class NewMessage:
    instance_id: str
    execution_id: str | None
    event: Event
    visible_at: float


@dataclass(slots=True)
class HistoryRow:
    instance_id: str
    seq: int
    event: Event


@dataclass(slots=True)
class Selection:
    """Which instances a read or a bulk change applies to, as the store takes it (times
    as epoch seconds; ``ids`` for the engine's own reads). Empty means all. Callers give
    a :class:`tenuto.Filter`, which checks its values and makes one."""

    statuses: tuple[Status, ...] = ()
    name: str | None = None
    created_from: float | None = None
    created_to: float | None = None
    id_prefix: str | None = None
    ids: tuple[str, ...] = field(default_factory=tuple)


class Reader(OutboxReads, FlowReader, EntityReads):
    """Consistent reads outside a write transaction."""

    @abc.abstractmethod
    def get_instance(self, instance_id: str) -> InstanceRow | None: ...

    @abc.abstractmethod
    def load_history(self, instance_id: str, after: int = 0) -> list[Event]: ...

    @abc.abstractmethod
    def query(
        self, flt: Selection, limit: int, after: tuple[float, str] | None
    ) -> list[InstanceRow]:
        """Instances matching ``flt``, newest first, after the cursor key ``after``."""

    @abc.abstractmethod
    def count_by_status(self, flt: Selection | None = None) -> dict[Status, int]:
        """How many instances (matching ``flt``) there are in each status."""

    @abc.abstractmethod
    def next_work_at(
        self,
        orchestrators: Sequence[str] | None,
        activities: Sequence[str] | None,
        exclude: Sequence[str] = (),
        versions: Versions = None,
    ) -> float | None:
        """The earliest time any work these names cover is due, scheduled resumes
        included (``None``: nothing is queued). Names and ``versions`` as in
        :meth:`claim_steps`."""

    @abc.abstractmethod
    def statuses(self, ids: Sequence[str]) -> dict[str, Status]: ...

    @abc.abstractmethod
    def as_left(self, items: Sequence[tuple[str, str, int]], now: float) -> set[str]:
        """Which of ``(instance_id, execution_id, history_len)`` are now exactly as a step
        left them, by the condition of :meth:`Tx.claim_for_results` (a read, no lease)."""

    @abc.abstractmethod
    def finished_instances(self, ids: Sequence[str]) -> list[InstanceRow]:
        """The rows of those of ``ids`` that have finished (a final status)."""

    @abc.abstractmethod
    def standing_pauses(
        self, kind: str | None = None, names: Sequence[str] | None = None
    ) -> list[StandingPauseRow]:
        """Standing pauses (of ``kind``, of ``names``), oldest first."""

    def standing_pauses_later(
        self, kind: str | None = None, names: Sequence[str] | None = None
    ) -> Callable[[], list[StandingPauseRow]]:
        """:meth:`standing_pauses`, answered when the returned function is called (a
        backend may send the query now and read its answer with a later one)."""
        rows = self.standing_pauses(kind, names)
        return lambda: rows

    @abc.abstractmethod
    def held_activities(self, instance_ids: Sequence[str]) -> dict[str, list[str]]:
        """For each instance, the names of its queued activities that a standing activity
        pause holds."""

    @abc.abstractmethod
    def known_names(self, kind: str) -> list[str]:
        """Names registered by workers; ``kind`` is "orchestrator" or "activity"."""

    @abc.abstractmethod
    def setting(self, key: str) -> str | None:
        """A setting shared by everyone using the store (JSON text), or ``None``."""

    @abc.abstractmethod
    def histories(self, instance_ids: Sequence[str]) -> dict[str, list[Event]]:
        """The history of each instance, oldest first (one read for them all)."""

    @abc.abstractmethod
    def inbox_of(self, instance_ids: Sequence[str]) -> dict[str, list[Message]]:
        """The pending messages of each instance, in arrival order."""

    @abc.abstractmethod
    def activities_of(self, instance_ids: Sequence[str]) -> list[ActivityRow]:
        """The queued or running activity executions of these instances, by id."""

    @abc.abstractmethod
    def page_ids(self, flt: Selection, after: str | None, limit: int) -> list[str]:
        """Ids of instances matching ``flt``, in id order, after the id ``after``: a way
        through a whole store, a page at a time (exports)."""

    # -- pending work and workers (see tenuto.work) ---------------------------------

    @abc.abstractmethod
    def work_rows(self, instance_ids: Sequence[str]) -> list[WorkRow]:
        """The queued and running activity executions of these instances, by id."""

    @abc.abstractmethod
    def awaiting(self, instance_ids: Sequence[str]) -> dict[str, str]:
        """The events each instance waits for (JSON text, as its last step wrote it)."""

    @abc.abstractmethod
    def children_of(self, parent_ids: Sequence[str]) -> list[InstanceRow]:
        """The sub-orchestrations of ``parent_ids``, oldest first."""

    @abc.abstractmethod
    def workers(self, now: float) -> list[WorkerRow]:
        """The workers whose last heartbeat is within their lease of ``now``, by id."""


class Tx(Reader, OutboxWrites, FlowTx, EntityWrites):
    """One database transaction. All writes commit together or not at all; it reads
    what it has written."""

    def __init__(self) -> None:
        #: Topics to wake listeners of once this transaction commits.
        self.wakes: set[str] = set()
        self._after_commit: list[Callable[[], None]] = []
        #: Tracking records to write to the outbox before the commit (see :meth:`track`).
        self.tracked = []

    def wake(self, topic: str = WORK) -> None:
        """Wake listeners of ``topic`` (``"work"``: workers; ``"done"``: waiters) once
        this transaction commits."""
        self.wakes.add(topic)

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once this transaction has committed (never if it rolls back)."""
        self._after_commit.append(fn)

    def committed(self) -> None:
        """Called by the store after a successful commit."""
        for fn in self._after_commit:
            fn()

    # -- instances -----------------------------------------------------------------

    @abc.abstractmethod
    def insert_instances(self, rows: Sequence[InstanceRow]) -> list[bool]:
        """Insert new instances; for each, ``False`` (and nothing written) if its id is
        taken."""

    @abc.abstractmethod
    def lock_instances(self, ids: Sequence[str]) -> list[InstanceRow]:
        """Read instances for update (blocking concurrent writers of those rows)."""

    @abc.abstractmethod
    def update_instance(self, instance_id: str, changes: dict[str, Any]) -> None:
        """Set columns of one instance (names from :data:`INSTANCE_FIELDS`)."""

    @abc.abstractmethod
    def update_instances(self, ids: Sequence[str], changes: dict[str, Any]) -> None:
        """Set the same columns of several instances."""

    @abc.abstractmethod
    def claim_steps(
        self,
        names: Sequence[str] | None,
        now: float,
        limit: int,
        lease: str,
        lease_until: float,
        exclude: Sequence[str] = (),
        versions: Versions = None,
    ) -> list[tuple[InstanceRow, list[Message]]]:
        """Lease up to ``limit`` live, unleased instances with work due (``next_due <= now``)
        for one orchestration step each, with each one's pending messages (oldest first);
        counts the claim in ``claims``. ``names`` selects the orchestrator names
        (``None``: any), ``exclude`` names never to claim; ``versions`` restricts names it
        lists to instances of those versions (an instance without a version matches
        none)."""

    @abc.abstractmethod
    def claim_for_results(
        self,
        items: Sequence[tuple[str, str, int, int, str]],
        now: float,
        lease: str,
        lease_until: float,
    ) -> Callable[[], dict[str, bool]]:
        """For each ``(instance_id, execution_id, history_len, activity_id,
        activity_lease)``: lease the instance if it is exactly as a step left it (RUNNING,
        that execution with that many history events, unleased, nothing due: no due
        message, ``next_due`` unset or ahead), without counting a claim; then, for each
        instance leased, take (delete) the activity if it still holds ``activity_lease``.
        Activities of instances not leased are left as they are.

        Returns a function that answers, for each instance leased, whether its activity
        was taken: the store may send the statement now and read its answer only when
        asked (with the transaction's next read)."""

    @abc.abstractmethod
    def update_leased_instances(
        self, items: Sequence[tuple[str, str, int, dict[str, Any]]], verify: bool = True
    ) -> list[bool]:
        """For each ``(instance_id, lease, history_len, changes)``: set the columns if the
        instance is still leased with ``lease``, still live and unpaused, and its history
        still has ``history_len`` events; else change nothing. Returns which were set.
        ``verify=False`` says the instances were leased earlier in this transaction, so
        are known to match: the store need not read the outcome back (all ``True``)."""

    @abc.abstractmethod
    def release_instances(self, ids: Sequence[str], lease: str) -> None:
        """Give up the lease ``lease`` on instances that still hold it."""

    @abc.abstractmethod
    def select_ids(self, flt: Selection, limit: int | None = None) -> list[str]:
        """Ids of instances matching ``flt``, locked for update where the backend can."""

    @abc.abstractmethod
    def children(self, parent_ids: Sequence[str], statuses: Sequence[Status]) -> list[str]:
        """Ids of sub-orchestrations of ``parent_ids`` whose status is in ``statuses``."""

    @abc.abstractmethod
    def due_resumes(self, now: float, limit: int) -> list[str]:
        """Ids of PAUSED instances whose scheduled resume time has come."""

    @abc.abstractmethod
    def set_due(self, instance_ids: Sequence[str], at: float) -> None:
        """Make RUNNING instances runnable no later than ``at``."""

    @abc.abstractmethod
    def recompute_due(self, instance_ids: Sequence[str], now: float) -> None:
        """Reset ``next_due`` of live, unpaused instances from their pending messages."""

    @abc.abstractmethod
    def delete_instances(self, ids: Sequence[str]) -> int:
        """Delete instances with their history, messages and activities."""

    @abc.abstractmethod
    def expired(
        self,
        status: Status,
        before: float,
        names: Sequence[str] | None,
        exclude: Sequence[str],
        limit: int,
    ) -> list[str]:
        """Ids of up to ``limit`` instances in final status ``status`` that finished
        before ``before``, oldest first, locked for update; rows another transaction
        holds are skipped, not waited for (two purgers never take the same rows).
        ``names``: only these orchestrators (``None``: any); ``exclude``: never these."""

    @abc.abstractmethod
    def put_setting(self, key: str, value: str | None) -> None:
        """Set (or with ``None``, remove) a shared setting."""

    # -- history -------------------------------------------------------------------

    @abc.abstractmethod
    def append_history(self, rows: Iterable[HistoryRow], skip_taken: bool = False) -> None:
        """Append history events (sequence numbers continue each instance's history).
        ``skip_taken`` skips, instead of failing on, a sequence number already taken: for
        a transaction that will roll back anyway if one was (eager steps)."""

    @abc.abstractmethod
    def load_history(self, instance_id: str, after: int = 0) -> list[Event]:
        """Events of one instance with sequence number ``>= after``, oldest first."""

    @abc.abstractmethod
    def delete_history(self, instance_id: str) -> None:
        """Forget an instance's history (continue-as-new starts a fresh one)."""

    # -- inbox ---------------------------------------------------------------------

    @abc.abstractmethod
    def add_messages(self, messages: Iterable[NewMessage]) -> None:
        """Queue messages for orchestrations (does not touch ``next_due``)."""

    @abc.abstractmethod
    def delete_messages(self, message_ids: Sequence[int]) -> None:
        """Delete consumed messages."""

    @abc.abstractmethod
    def delete_pending_work(
        self, instance_ids: Sequence[str], *, keep_events: bool = False
    ) -> None:
        """Drop the messages and not-yet-started activities of finished instances.

        ``keep_events``: for an instance that continues as new, keep the messages meant
        for whichever execution is current (external events no step has delivered yet):
        the new execution receives them."""

    # -- activities ----------------------------------------------------------------

    @abc.abstractmethod
    def insert_activities(self, rows: Iterable[NewActivity]) -> None:
        """Queue activity executions (held if ``held``, or if their activity type is under
        a standing pause)."""

    @abc.abstractmethod
    def claim_activities(
        self,
        names: Sequence[str] | None,
        now: float,
        limit: int,
        lease: str,
        lease_until: float,
        exclude: Sequence[str] = (),
    ) -> list[ActivityRow]:
        """Lease up to ``limit`` ready activities, oldest first (``names`` and
        ``exclude`` as in :meth:`claim_steps`)."""

    @abc.abstractmethod
    def deliver_results(
        self, items: Sequence[tuple[int, str, NewMessage]], now: float
    ) -> Callable[[], set[int]]:
        """For each ``(activity_id, lease, message)`` whose activity is still leased with
        ``lease``: delete the activity, queue the message, make its instance due.

        Returns a function giving the ids of the activities delivered; a backend may
        defer reading them until then (call it before the transaction ends)."""

    @abc.abstractmethod
    def retry_activity(self, activity_id: int, lease: str, attempt: int, visible_at: float) -> bool:
        """Release a leased activity for another attempt at ``visible_at``."""

    @abc.abstractmethod
    def renew_leases(self, leases: Sequence[str], until: float) -> None:
        """Extend leases held by a live worker."""

    @abc.abstractmethod
    def hold_activities(self, instance_ids: Sequence[str]) -> None:
        """Hold the queued (unleased) activities of paused instances."""

    @abc.abstractmethod
    def release_activities(self, instance_ids: Sequence[str]) -> None:
        """Release held activities of resumed instances (except those of activity types
        under a standing pause)."""

    @abc.abstractmethod
    def register_names(
        self, orchestrators: Sequence[str], activities: Sequence[str], now: float
    ) -> None:
        """Record the names a worker serves (so clients can check names they are given)."""

    @abc.abstractmethod
    def lock_names(self, kind: str, names: Sequence[str], exclusive: bool) -> None:
        """Serialize operations on orchestrator or activity names until commit: starts
        take a shared lock on their orchestrator's name, a standing pause an exclusive
        one, so no start slips past a standing pause unseen. (A no-op where every write
        transaction is serialized anyway.)"""

    @abc.abstractmethod
    def insert_standing_pause(self, row: StandingPauseRow) -> bool:
        """Record a standing pause; ``False`` (nothing written) if one stands already."""

    @abc.abstractmethod
    def delete_standing_pause(self, kind: str, name: str) -> StandingPauseRow | None:
        """Remove a standing pause; returns it, or ``None`` if there was none."""

    @abc.abstractmethod
    def due_standing_resumes(self, now: float) -> list[tuple[str, str]]:
        """``(kind, name)`` of standing pauses whose scheduled resume time has come."""

    @abc.abstractmethod
    def hold_activity_type(self, name: str) -> list[str]:
        """Hold every queued execution of activity ``name``; returns the ids of the
        instances that had some."""

    @abc.abstractmethod
    def release_activity_type(self, name: str) -> list[str]:
        """Release executions of activity ``name`` whose instance is not paused; returns
        the ids of those instances."""

    @abc.abstractmethod
    def annotate(self, instance_ids: Sequence[str], event: Event) -> None:
        """Append the same event to the history of each instance (pause, resume, ...)."""

    # -- workers ---------------------------------------------------------------------

    @abc.abstractmethod
    def put_worker(self, row: WorkerRow) -> None:
        """Record a worker's heartbeat (insert or replace its row)."""

    @abc.abstractmethod
    def delete_workers(self, ids: Sequence[str] = (), seen_before: float | None = None) -> None:
        """Remove the rows of workers ``ids`` (stopped), and of those last seen before
        ``seen_before`` (long gone)."""


class Listener(abc.ABC):
    """Waits for committed changes of its topics (work made due, instances finished).

    A listener may wake for changes that turn out to be irrelevant (SQLite cannot tell
    one commit from another), never miss one for longer than its polling fallback.
    """

    #: The in-process event this listener waits on (a store's own commits skip it when
    #: made with ``transaction(origin=listener)``).
    event: threading.Event

    @abc.abstractmethod
    def wait(self, timeout: float) -> bool:
        """Block until a change is seen (``True``) or ``timeout`` seconds pass (``False``)."""

    def poll(self) -> bool:
        """Whether a change was seen since the last wait or poll, without blocking."""
        return self.wait(0)

    @abc.abstractmethod
    def kick(self) -> None:
        """Wake the waiter now (from another thread of the same process)."""

    @abc.abstractmethod
    def close(self) -> None: ...


class Store(abc.ABC):
    """A database holding tenuto's state."""

    url: str
    #: The exceptions the backend's database driver raises: see :func:`is_database_error`.
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = ()

    @abc.abstractmethod
    def transaction(
        self, origin: Listener | None = None, durable: bool = True
    ) -> AbstractContextManager[Tx]:
        """A write transaction: commits on normal exit, rolls back on an exception.

        Its wake-ups skip ``origin``, the listener of whoever runs the transaction.
        ``durable=False`` allows the commit to return before it is on disk: a database
        crash may then lose it (never a part of it), so use it only for changes that
        are redone when lost. A later durable commit makes it durable too.
        """

    @abc.abstractmethod
    def reader(self) -> AbstractContextManager[Reader]:
        """A read-only view."""

    def snapshot(self) -> AbstractContextManager[Reader]:
        """A read-only view in which every read sees the same committed state (for a
        picture made of several reads); by default :meth:`reader`, where that holds."""
        return self.reader()

    @abc.abstractmethod
    def listener(self, topics: Iterable[str] = TOPICS) -> Listener:
        """Something to wait on for changes of ``topics`` committed by anyone."""

    def is_transient(self, exc: BaseException) -> bool:
        """Whether ``exc`` aborted a transaction that is certainly not committed and is
        worth running again: a deadlock or serialization failure (the database rolled it
        back and says so), or a connection that failed before the commit was sent."""
        return False

    def outage(self, exc: BaseException) -> str | None:
        """A one-line description of ``exc`` if it means the database cannot be reached
        (or is locked) right now, as opposed to a fault in the request."""
        return None

    def run(self, fn: Callable[[Tx], T], attempts: int = 5, outage_wait: float = 0.0) -> T:
        """Run ``fn`` in a transaction, again (from the start) after a transient failure,
        and for up to ``outage_wait`` seconds while the database is unreachable."""
        deadline = time.monotonic() + outage_wait
        attempt = 0
        while True:
            try:
                with self.transaction() as tx:
                    return fn(tx)
            except Exception as exc:
                attempt += 1
                outage = self.outage(exc) if outage_wait > 0 else None
                if outage is not None and time.monotonic() < deadline:
                    if attempt == 1:
                        log.warning("%s; retrying for up to %.0f s", outage, outage_wait)
                elif attempt >= attempts or not self.is_transient(exc):
                    raise
                time.sleep(min(0.005 * 2**attempt, 0.5))

    def read(self, fn: Callable[[Reader], T], attempts: int = 3, snapshot: bool = False) -> T:
        """Run ``fn`` with a reader (a :meth:`snapshot` if ``snapshot``), again after a
        transient failure (reads are always safe to repeat)."""
        for attempt in range(attempts):
            try:
                with self.snapshot() if snapshot else self.reader() as r:
                    return fn(r)
            except Exception as exc:
                if attempt + 1 >= attempts or not (
                    self.is_transient(exc) or self.outage(exc) is not None
                ):
                    raise
                time.sleep(min(0.005 * 2**attempt, 0.5))
        raise AssertionError("unreachable")

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from the database driver of a backend loaded in this process
    (a database that refused or failed an operation), rather than from tenuto or the
    request. Entry points report such errors as database errors without naming the
    driver, so that nothing outside this package depends on one."""
    backends: list[type[Store]] = []
    pending = [Store]
    while pending:
        subclasses = pending.pop().__subclasses__()
        backends += subclasses
        pending += subclasses
    return any(isinstance(exc, backend.driver_errors) for backend in backends)


def split_url(url: str) -> SplitResult:
    """``urlsplit(url)``, refusing a URL it cannot read (an unclosed ``[`` host) with a
    :class:`~tenuto.ValidationError`."""
    try:
        return urlsplit(url)
    except ValueError as exc:
        raise ValidationError(f"invalid database URL {url[:80]!r}: {exc}") from None


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Split ``items`` into slices of at most ``size`` (bound parameter limits)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
