"""Work items for connected Durable Task SDK workers.

Each ``GetWorkItems`` stream is one SDK worker. The dispatcher leases work for it from
the store with the same claims tenuto's own workers use (so the two never take the same
item), turns it into protocol work items, and turns what the worker sends back into the
rows a step or an activity result writes:

* an orchestration step is claimed with a lease, sent as an ``OrchestratorRequest``
  (its stored history as ``pastEvents``, what happened since as ``newEvents``) under a
  completion token; ``CompleteOrchestratorTask`` builds a :class:`tenuto._step.Decision`
  from the actions and commits it in one transaction, if the lease is still the one the
  step was claimed with (otherwise the instance was paused, terminated or taken over
  meanwhile and the result is dropped: its messages stay queued for a later step);
* an activity is claimed with a lease that the dispatcher renews while the worker's
  stream is connected; ``CompleteActivityTask`` settles it like a tenuto activity. A
  worker that disconnects stops the renewals: its activities go to another worker once
  their lease runs out. Its orchestration steps are released at once (a step commits
  only with its lease, so a late completion can never commit twice).

Names: a stream whose request carries work-item filters gets only the orchestrators and
activities it names (an orchestrator filter that lists versions: only instances of those
versions; the others stay PENDING for a worker that has them); one without gets any name
except those a co-hosted tenuto App serves (``exclude``).

How much a stream holds: an SDK worker advertises a large concurrency (100 per CPU) but
runs a few threads, and queues what it cannot start yet. What it has queued would start
even after the instance is paused, so a stream holds at most ``activities_per_worker``
activities at once (refilled as their results come back): they all run at once, and
nothing queued behind them escapes a pause.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import durabletask.internal.orchestrator_service_pb2 as pb
from google.protobuf import wrappers_pb2

from .. import _json, _step
from .. import history as h
from .._activities import ActivityOutcome, deliver_outcomes
from .._json import dumps
from .._wakeups import DONE, ENTITIES, WORK
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ValidationError
from ..status import Failure
from ..store.base import ActivityRow, InstanceRow, Store, Tx, WorkerRow
from . import convert
from .entity_dispatch import SdkEntities

log = logging.getLogger("tenuto.grpc")

#: Work items one stream may hold at once when its request does not say.
DEFAULT_OUTSTANDING = 100
#: Activities one stream holds at once unless the dispatcher is told otherwise: no more
#: than an SDK worker's thread pool runs at once (CPUs + 4 by default).
ACTIVITIES_PER_WORKER = 4
#: Most items leased per claim.
BATCH = 50


@dataclass(eq=False)
class Stream:
    """One connected SDK worker (one ``GetWorkItems`` call)."""

    id: int
    #: Orchestrator and activity names it serves (``None``: any).
    orchestrators: list[str] | None
    activities: list[str] | None
    max_steps: int
    max_activities: int
    #: Orchestrator name -> the versions it serves (names not listed: any version).
    versions: dict[str, list[str]] = field(default_factory=dict)
    steps: set[str] = field(default_factory=set)
    activity_tokens: set[str] = field(default_factory=set)
    closed: bool = False
    #: Entity names it serves (``None``: any, for a worker without filters).
    entities: list[str] | None = None
    #: Consecutive idle claims that found due work it could not take (backs polling off).
    misses: int = 0
    #: Claim passes made for it (each one leases whatever it may take).
    claims: int = 0
    #: Where it connected from (the gRPC peer, such as ``ipv4:10.0.0.7:51234``).
    peer: str | None = None
    #: When it connected (epoch seconds).
    opened_at: float = 0.0


@dataclass
class _Claimed:
    """A step leased for a stream: the events it adds, and the messages it consumes."""

    row: InstanceRow
    new_events: list[h.Event]
    consumed: list[int]
    stream: Stream
    claimed_at: float


@dataclass
class _Activity:
    row: ActivityRow
    stream: Stream
    claimed_at: float


_L = TypeVar("_L", _Claimed, _Activity)


class Dispatcher:
    """Leases work for SDK workers and commits what they send back.

    ``exclude_orchestrators`` / ``exclude_activities``: names served by a tenuto App in
    the same deployment (never handed to SDK workers).
    """

    def __init__(
        self,
        store: Store,
        *,
        exclude_orchestrators: Sequence[str] = (),
        exclude_activities: Sequence[str] = (),
        exclude_entities: Sequence[str] = (),
        lease_seconds: float = 30.0,
        poll_interval: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
        activities_per_worker: int = ACTIVITIES_PER_WORKER,
    ) -> None:
        if lease_seconds <= 0:
            raise ValidationError("lease_seconds must be positive")
        if activities_per_worker < 1:
            raise ValidationError("activities_per_worker must be at least 1")
        self.activities_per_worker = activities_per_worker
        self.store = store
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.exclude_orchestrators = list(exclude_orchestrators)
        self.exclude_activities = list(exclude_activities)
        self.exclude_entities = list(exclude_entities)
        self.id = f"grpc:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._generation = 0
        self._counter = itertools.count(1)
        self._steps: dict[str, _Claimed] = {}
        self._activities: dict[str, _Activity] = {}
        self._streams: set[Stream] = set()
        self._stopping = threading.Event()
        self._listener = store.listener([WORK, DONE, ENTITIES])
        #: Entity batches leased for SDK workers (see tenuto.grpc.entity_dispatch).
        self.entities = SdkEntities(store, clock)
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Dispatcher:
        self._thread = threading.Thread(target=self._watch, name="tenuto-grpc-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._listener.kick()
        self.changed()
        if self._thread is not None:
            self._thread.join(10)
        self._listener.close()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def streams(self) -> list[Stream]:
        """The connected SDK workers."""
        with self._lock:
            return sorted(self._streams, key=lambda s: s.id)

    # -- waking streams and waiters ----------------------------------------------------

    @property
    def generation(self) -> int:
        with self._lock:
            return self._generation

    def changed(self) -> None:
        """Something may have become due or finished: wake every waiting stream."""
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Wait until something changed since generation ``seen``, or ``timeout``."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._generation != seen or self._stopping.is_set(), max(timeout, 0.0)
            )

    def _watch(self) -> None:
        next_renewal = 0.0
        while not self._stopping.is_set():
            try:
                self._listener.wait(min(self.poll_interval, self.lease_seconds / 3))
                self.changed()
                now = self.clock.now()
                if now >= next_renewal:
                    self._renew(now)
                    next_renewal = now + self.lease_seconds / 3
            except Exception as exc:
                if self.store.outage(exc) is None:
                    log.exception("tenuto gRPC dispatcher: housekeeping failed")
                self._stopping.wait(0.5)

    def _renew(self, now: float) -> None:
        """Extend the leases of activities held by connected workers; forget those of
        gone workers, and unanswered steps, once their lease has long run out."""
        with self._lock:
            leases = {a.row.lease for a in self._activities.values() if not a.stream.closed}
            gone = [
                token
                for token, a in self._activities.items()
                if a.stream.closed and now > a.claimed_at + 2 * self.lease_seconds
            ]
            for token in gone:
                del self._activities[token]
            # Steps a worker never answered: their lease ran out long ago, so the
            # instance is someone else's by now; stop counting them against the worker.
            expired = [
                (token, step)
                for token, step in self._steps.items()
                if now > step.claimed_at + 2 * self.lease_seconds
            ]
            for token, step in expired:
                del self._steps[token]
                step.stream.steps.discard(token)
        live = sorted(lease for lease in leases if lease)
        beats = [self._heartbeat(stream, now) for stream in self.streams]

        def renew(tx: Tx) -> None:
            if live:
                tx.renew_leases(live, now + self.lease_seconds)
            for beat in beats:
                tx.put_worker(beat)

        if live or beats:
            self.store.run(renew)

    def worker_id(self, stream: Stream) -> str:
        """The id a stream's worker is listed under (see :meth:`tenuto.Client.workers`);
        its leases start with it, so pending work names it as the worker running an
        activity."""
        return f"{self.id}/{stream.id}"

    def _heartbeat(self, stream: Stream, now: float) -> WorkerRow:
        with self._lock:
            running = len(stream.activity_tokens)
        return WorkerRow(
            id=self.worker_id(stream),
            host=_peer_host(stream.peer) or socket.gethostname(),
            pid=os.getpid(),
            kind="sdk",
            started_at=stream.opened_at,
            last_seen=now,
            lease_seconds=self.lease_seconds,
            orchestrators=None if stream.orchestrators is None else dumps(stream.orchestrators),
            activities=None if stream.activities is None else dumps(stream.activities),
            running=running,
        )

    # -- streams -----------------------------------------------------------------------

    def open(self, request: pb.GetWorkItemsRequest, peer: str | None = None) -> Stream:
        orchestrators: list[str] | None = None
        activities: list[str] | None = None
        versions: dict[str, list[str]] = {}
        entities: list[str] | None = None
        if request.HasField("workItemFilters"):
            entities = sorted({f.name.lower() for f in request.workItemFilters.entities})
            filters = request.workItemFilters
            orchestrators = sorted({f.name for f in filters.orchestrations})
            activities = sorted({f.name for f in filters.activities})
            versions = _versions(filters.orchestrations)
        stream = Stream(
            next(self._counter),
            orchestrators,
            activities,
            request.maxConcurrentOrchestrationWorkItems or DEFAULT_OUTSTANDING,
            min(
                request.maxConcurrentActivityWorkItems or DEFAULT_OUTSTANDING,
                self.activities_per_worker,
            ),
            versions,
            peer=peer,
            entities=entities,
            opened_at=self.clock.now(),
        )
        now = self.clock.now()
        beat = self._heartbeat(stream, now)

        def register(tx: Tx) -> None:
            if orchestrators or activities:
                # Known names let `tenuto start` and the HTTP API check the names they get.
                tx.register_names(orchestrators or [], activities or [], now)
            if entities:
                tx.register_entity_names(entities, now)
            tx.put_worker(beat)

        self.store.run(register)
        with self._lock:
            self._streams.add(stream)
        log.info(
            "SDK worker connected (stream %d; orchestrators: %s; activities: %s)",
            stream.id,
            "any" if orchestrators is None else ", ".join(orchestrators) or "none",
            "any" if activities is None else ", ".join(activities) or "none",
        )
        return stream

    def close(self, stream: Stream) -> None:
        """The worker is gone: release its orchestration steps now; its activities'
        leases are no longer renewed."""
        with self._lock:
            stream.closed = True
            self._streams.discard(stream)
            steps = [(t, self._steps.pop(t)) for t in stream.steps if t in self._steps]
            stream.steps.clear()
        gone = self.worker_id(stream)

        def release(tx: Tx) -> None:
            if steps:
                _release(tx, steps)
            tx.delete_workers([gone])

        try:
            self.store.run(release)
        except Exception:
            log.exception("could not release the steps of a disconnected SDK worker")
        self.changed()
        log.info("SDK worker disconnected (stream %d)", stream.id)

    # -- claiming ----------------------------------------------------------------------

    def claim(self, stream: Stream) -> tuple[list[pb.WorkItem], float]:
        """Lease work for ``stream``; returns its work items, and how long to wait for
        more if there are none."""
        with self._lock:
            room_steps = stream.max_steps - len(stream.steps)
            room_activities = stream.max_activities - len(stream.activity_tokens)
        lease = f"{self.worker_id(stream)}:{next(self._counter)}"
        now = self.clock.now()
        until = now + self.lease_seconds
        take_steps = room_steps > 0 and stream.orchestrators != []
        take_activities = room_activities > 0 and stream.activities != []
        entity_items: list[pb.WorkItem] = []

        def run(
            tx: Tx,
        ) -> tuple[list[tuple[InstanceRow, list[h.Event], _Claimed]], list[ActivityRow]]:
            if stream.entities is None or stream.entities:
                entity_items[:] = self.entities.claim(
                    tx, stream.entities, self.exclude_entities, now, BATCH, lease, until
                )
            steps = []
            if take_steps:
                for row, messages in tx.claim_steps(
                    stream.orchestrators,
                    now,
                    min(room_steps, BATCH),
                    lease,
                    until,
                    self.exclude_orchestrators,
                    stream.versions,
                ):
                    if row.claims > _step.MAX_CLAIMS:
                        cause = "the SDK worker crashes on it or never answers"
                        abandoned = _step.abandoned(row, now, cause)
                        _step.write(tx, [abandoned], now, self.clock).finish()
                        continue
                    past = tx.load_history(row.instance_id) if row.history_len else []
                    execution = _step.PastHistory(past)
                    new_events, consumed = _step.new_events(row, messages, now, execution)
                    steps.append((row, past, _Claimed(row, new_events, consumed, stream, now)))
            activities: list[ActivityRow] = []
            if take_activities:
                activities = tx.claim_activities(
                    stream.activities,
                    now,
                    min(room_activities, BATCH),
                    lease,
                    until,
                    self.exclude_activities,
                )
            return steps, activities

        steps, activities = self.store.run(run)
        stream.claims += 1
        items: list[pb.WorkItem] = list(entity_items)
        with self._lock:
            for row, past, step in steps:
                token = f"{lease}/o/{row.instance_id}"
                self._steps[token] = step
                stream.steps.add(token)
                items.append(_orchestrator_item(token, row, past, step.new_events))
            for act in activities:
                token = f"{lease}/a/{act.id}"
                self._activities[token] = _Activity(act, stream, now)
                stream.activity_tokens.add(token)
                items.append(_activity_item(token, act))
        if items:
            stream.misses = 0
            return items, 0.0
        return items, self._idle_wait(stream, room_steps > 0 or room_activities > 0)

    def _idle_wait(self, stream: Stream, has_room: bool) -> float:
        if not has_room:
            return self.poll_interval  # a completion wakes the stream
        orchestrators = stream.orchestrators
        exclude = [*self.exclude_orchestrators, *self.exclude_activities]
        at = self.store.read(
            lambda r: r.next_work_at(orchestrators, stream.activities, exclude, stream.versions)
        )
        if at is None:
            return self.poll_interval
        delay = at - self.clock.now()
        if delay <= 0:
            # Due, yet not claimable by this stream (a race, or a scheduled resume that
            # housekeeping has yet to make): back off so as not to spin.
            stream.misses += 1
            return min(0.02 * 2.0 ** min(stream.misses, 6), self.poll_interval)
        stream.misses = 0
        return min(delay, self.poll_interval)

    # -- results -----------------------------------------------------------------------

    def _take(self, leased: dict[str, _L], token: str) -> _L | None:
        """The step or activity leased under ``token`` (from ``leased``), no longer
        held by its stream."""
        with self._lock:
            item = leased.pop(token, None)
            if item is not None:
                item.stream.steps.discard(token)
                item.stream.activity_tokens.discard(token)
        return item

    def complete_orchestration(self, request: pb.OrchestratorResponse) -> bool:
        """Commit an SDK worker's step; ``False`` if it no longer counts."""
        step = self._take(self._steps, request.completionToken)
        if step is None:
            _stale("orchestration", request.instanceId)
            return False
        row = step.row
        if request.instanceId and request.instanceId != row.instance_id:
            self._release([(request.completionToken, step)])
            raise ValidationError(
                f"the completion token belongs to instance {row.instance_id!r}, "
                f"not {request.instanceId!r}"
            )
        actions, outcome = convert.actions(request.actions, row.instance_id)
        custom: str | _step._Unchanged | None = _step.UNCHANGED
        now = self.clock.now()
        try:
            if request.HasField("customStatus"):
                what = f"the custom status of orchestrator {row.name!r}"
                custom = _json_text(request.customStatus.value, what)
            written = _step.build(
                _step.Decision(row, now, step.new_events, step.consumed, actions, outcome, custom)
            )
        except Exception as exc:  # e.g. a result that is not JSON-encodable
            log.exception("step of instance %s could not be recorded", row.instance_id)
            written = _step.failed(row, Failure.from_exception(exc), now, step.new_events)

        def commit(tx: Tx) -> int:
            committed = _step.write(tx, [written], now, self.clock)
            committed.finish()
            return committed.count

        done = self.store.run(commit) > 0
        if not done:
            log.info("dropped a step of %s: the instance changed meanwhile", row.instance_id)
        self.changed()
        return done

    def abandon_orchestration(self, token: str) -> None:
        step = self._take(self._steps, token)
        if step is not None:
            self._release([(token, step)])

    def _release(self, steps: list[tuple[str, _Claimed]]) -> None:
        self.store.run(lambda tx: _release(tx, steps))
        self.changed()

    def complete_activity(self, request: pb.ActivityResponse) -> bool:
        """Record an activity's result; ``False`` if it no longer counts."""
        act = self._take(self._activities, request.completionToken)
        if act is None:
            _stale("activity", request.instanceId)
            return False
        failed = request.HasField("failureDetails") and bool(
            request.failureDetails.errorType or request.failureDetails.errorMessage
        )
        if failed:
            outcome = ActivityOutcome(act.row, None, convert.failure_of(request.failureDetails))
        else:
            try:
                what = f"the output of activity {act.row.name!r}"
                result = convert.lenient(request, "result", what)
                dumps(result, what)
                outcome = ActivityOutcome(act.row, result)
            except TypeError as exc:  # InvalidJSON too: the activity fails with it
                outcome = ActivityOutcome(act.row, None, Failure.from_exception(exc))
        now = self.clock.now()
        self.store.run(lambda tx: deliver_outcomes(tx, [outcome], now)())
        self.changed()
        return True

    def abandon_activity(self, token: str) -> None:
        act = self._take(self._activities, token)
        if act is None or act.row.lease is None:
            return
        row, lease = act.row, act.row.lease
        now = self.clock.now()

        def release(tx: Tx) -> None:
            tx.retry_activity(row.id, lease, row.attempt, now)
            tx.wake()

        self.store.run(release)
        self.changed()


def _stale(kind: str, instance_id: str) -> None:
    log.info("ignoring a stale %s result for %s (unknown completion token)", kind, instance_id)


def _versions(filters: Sequence[pb.OrchestrationFilter]) -> dict[str, list[str]]:
    """The versions each filtered orchestrator name is served in; a name that some
    filter lists without versions is served in any version (left out)."""
    pinned: dict[str, set[str]] = {}
    free: set[str] = set()
    for f in filters:
        if f.versions:
            pinned.setdefault(f.name, set()).update(f.versions)
        else:
            free.add(f.name)
    return {name: sorted(v) for name, v in pinned.items() if name not in free}


def _release(tx: Tx, steps: list[tuple[str, _Claimed]]) -> None:
    for _token, step in steps:
        assert step.row.lease is not None
        tx.release_instances([step.row.instance_id], step.row.lease)
    tx.wake()


def _json_text(raw: str, what: str) -> str | None:
    """JSON text to store: ``raw`` if it is JSON, else ``raw`` as a JSON string.
    :class:`~tenuto.InvalidJSON` if it is JSON that tenuto cannot store."""
    if raw == "":
        return None
    try:
        _json.parse(raw, what)
        return raw
    except json.JSONDecodeError:
        return dumps(raw)


def _orchestrator_item(
    token: str, row: InstanceRow, past: list[h.Event], new: list[h.Event]
) -> pb.WorkItem:
    return pb.WorkItem(
        completionToken=token,
        orchestratorRequest=pb.OrchestratorRequest(
            instanceId=row.instance_id,
            executionId=wrappers_pb2.StringValue(value=row.execution_id),
            pastEvents=convert.history(past, row, for_replay=True),
            newEvents=convert.history(new, row, for_replay=True, earlier=past),
        ),
    )


def _activity_item(token: str, act: ActivityRow) -> pb.WorkItem:
    request: Any = pb.ActivityRequest(
        name=act.name,
        taskId=act.task_id,
        orchestrationInstance=pb.OrchestrationInstance(
            instanceId=act.instance_id,
            executionId=wrappers_pb2.StringValue(value=act.execution_id),
        ),
    )
    if act.input is not None and act.input != "null":
        request.input.value = act.input
    if act.trace_parent is not None:  # the SDK worker's activity span joins the trace
        request.parentTraceContext.traceParent = act.trace_parent
    return pb.WorkItem(completionToken=token, activityRequest=request)


def _peer_host(peer: str | None) -> str | None:
    """The address in a gRPC peer (``ipv4:10.0.0.7:51234`` -> ``10.0.0.7``)."""
    if not peer:
        return None
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]") or None
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0] or None
    return rest or kind
