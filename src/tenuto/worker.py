"""The worker: runs orchestration steps and activities.

A worker loops over *cycles*. One cycle is one transaction that records the outcomes of
activities that finished since the last cycle, resumes instances whose scheduled resume
time has come, claims a step of every instance with work due, and leases as many
ready activities as the worker has room for, starting them before it commits. An
activity result therefore reaches its orchestration, and the orchestration's next
activity starts, in a single transaction.

Activities are leased with an expiry that the worker keeps renewing while they run. When
a worker dies, its transactions roll back and its leases run out; any other worker (or
the same one restarted) then takes the work over. Activities run at least once;
orchestration steps commit exactly once.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import queue
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from . import _control, _limits, _schedules, _step
from ._activities import (
    ActivityOutcome,
    ActivityRunner,
    completed_event,
    deliver_outcomes,
    retry_names,
)
from ._entity_worker import EntityRunner
from ._firer import ScheduleFirer
from ._json import dumps
from ._runner import Claimed, ReplayCache, StepRunner
from ._step import Committed, Step
from ._wakeups import WORK
from .app import App
from .clock import SYSTEM_CLOCK, Clock
from .errors import ValidationError
from .retention import Purger, Retention
from .status import Failure, storable_text, type_name
from .store import open_store
from .store.base import ActivityRow, InstanceRow, Store, Tx, WorkerRow

log = logging.getLogger("tenuto.worker")

#: A busy worker claims at least this often (seconds) even without a signal.
_FORCED_CLAIM = 0.1
#: How long a starting worker waits for an unreachable database before giving up.
_STARTUP_WAIT = 30.0
#: Rows of workers not seen for this long (seconds) are removed by a starting worker.
_FORGET_GONE_WORKERS = 3600.0
#: Up to this many history events, an eager step runs without reading its instance
#: first: if it turns out stale, the full replay that follows costs a few milliseconds.
_EAGER_UNREAD_HISTORY = 1_000


class Worker:
    """Runs the orchestrators and activities of ``app`` against a database.

    In-process::

        with tenuto.Worker(app, "sqlite:///tenuto.db"):
            ...                      # the worker runs in background threads

    As a process: ``tenuto worker module:app --db sqlite:///tenuto.db``, or
    ``Worker(app, db).run()``, which returns after SIGINT or SIGTERM.

    ``concurrency`` bounds the activities running at once. ``lease_seconds`` is how long
    a crashed worker's activities stay claimed before another worker takes them over.
    ``step_warning`` is how long an orchestration step may run before the worker logs a
    warning naming the instance and orchestrator (orchestrator code that never yields).

    ``eager_steps_below``: the result of an activity that ran for less than this many
    seconds is committed together with the orchestration step it makes due, when this
    worker took the instance's previous step and nothing changed since (an *eager step*:
    one transaction instead of two). If the worker dies during that step, the activity
    runs again, which costs less than this. Results of longer activities are always
    committed on their own first. ``0`` turns eager steps off.

    ``retention``: how long to keep finished instances (a :class:`~tenuto.Retention`,
    its text such as ``"COMPLETED=30d"``, or a mapping); default ``app.retention``. A
    policy stored in the database (``Client.set_retention``) wins over both. The worker
    purges in the background, ``retention_batch`` instances per transaction, checking
    every ``retention_interval`` seconds.
    """

    def __init__(
        self,
        app: App,
        db: str | None = None,
        *,
        store: Store | None = None,
        concurrency: int = 64,
        lease_seconds: float = 30.0,
        batch_size: int = 100,
        cache_size: int = 10_000,
        poll_interval: float = 1.0,
        shutdown_grace: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
        name: str | None = None,
        step_warning: float = 10.0,
        eager_steps_below: float = 0.1,
        retention: Retention | str | Mapping[str, Any] | None = None,
        retention_batch: int = 200,
        retention_interval: float = 60.0,
    ) -> None:
        if concurrency < 1:
            raise ValidationError("concurrency must be at least 1")
        if lease_seconds <= 0:
            raise ValidationError("lease_seconds must be positive")
        if eager_steps_below < 0:
            raise ValidationError("eager_steps_below must be 0 (off) or a number of seconds")
        self.app = app
        self._own_store = store is None
        self.store = store if store is not None else open_store(db)
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.shutdown_grace = shutdown_grace
        self.step_warning = step_warning
        self.eager_steps_below = eager_steps_below
        #: The step running now: (instance id, orchestrator, monotonic start), for the watchdog.
        self._running: tuple[str, str, float] | None = None
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._outcomes: queue.SimpleQueue[ActivityOutcome] = queue.SimpleQueue()
        self._activities = ActivityRunner(app, concurrency, self._activity_done)
        self._steps = StepRunner(app, ReplayCache(cache_size), clock)
        self._ran: list[Step] = []  # steps run, to commit in the next cycle
        self._orchestrators = app.orchestrator_names
        self._activity_names = app.activity_names
        self._async_names = [n for n in app.activity_names if app.get_activity(n).is_async]
        self._lease_counter = itertools.count(1)
        self._next_renewal = 0.0
        self._started_at = 0.0
        self._next_resume_check = 0.0
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener = self.store.listener([WORK])
        self._kicked = False
        self._maybe_instances = self._maybe_activities = True
        self._next_forced_claim = 0.0
        #: Instances whose cached replayer was spent by a change, to rebuild when idle.
        self._rewarm: dict[str, None] = {}
        #: After a cycle failed: how many pending items to commit one per cycle.
        self._isolating = 0
        #: Cycles that did work, and every cycle tried (busy or idle).
        self.cycles = 0
        self.polls = 0
        #: Eager steps committed: in the transaction that took the result they ran on.
        self.eager_steps = 0
        #: The entity loop, if the app has entities (see tenuto._entity_worker).
        self.entities = (
            EntityRunner(
                app,
                self.store,
                clock,
                self.id,
                lease_seconds=lease_seconds,
                poll_interval=poll_interval,
            )
            if app.entity_names
            else None
        )
        own = app.retention if retention is None else Retention.of(retention)
        self.purger = Purger(
            self.store,
            own,
            self.id,
            clock=clock.now,
            batch=retention_batch,
            interval=retention_interval,
        )
        #: Fires due schedules (every worker does; the store makes each fire time once).
        self.firer = ScheduleFirer(self.store, self.id, clock=clock.now)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Worker:
        """Start the worker's threads and return at once."""
        if self._thread is not None:
            raise RuntimeError("this worker has already been started")
        self._started_at = self.clock.now()

        # A worker started while the database restarts waits for it, as a running one does.
        self.store.run(self._register, outage_wait=_STARTUP_WAIT)
        self._thread = threading.Thread(
            target=self._main, name=f"tenuto-worker-{self.id}", daemon=True
        )
        self._thread.start()
        threading.Thread(target=self._watch, name=f"tenuto-watchdog-{self.id}", daemon=True).start()
        self.purger.start()
        self.firer.start()
        if self.entities is not None:
            self.entities.start()
        log.info(
            "worker %s started (orchestrators: %s; activities: %s)",
            self.id,
            ", ".join(self._orchestrators) or "none",
            ", ".join(self._activity_names) or "none",
        )
        return self

    def _register(self, tx: Tx) -> None:
        """Record the names this worker serves, and set what its app declares: limits
        (``@app.activity(max_concurrent=...)``) and schedules (``@app.schedule``)."""
        now = self.clock.now()
        tx.register_names(self._orchestrators, self._activity_names, now)
        _limits.declare(tx, self.app, now, by=f"worker {self.id}")
        _schedules.declare(tx, self.app, now)
        tx.delete_workers(seen_before=now - max(_FORGET_GONE_WORKERS, 10 * self.lease_seconds))
        tx.put_worker(self._heartbeat(now))

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming work, let running activities finish (up to the shutdown grace),
        record their results, and stop."""
        self._stopping.set()
        self._listener.kick()
        self.purger.stop()
        self.firer.stop()
        if self.entities is not None:
            self.entities.stop()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.shutdown_grace + 10)
        self._activities.shutdown()
        self._listener.close()
        if self._thread is not None:
            try:  # gone at once from the list of workers (else after its lease)
                self.store.run(lambda tx: tx.delete_workers([self.id]))
            except Exception:
                log.debug("worker %s: could not remove its heartbeat", self.id, exc_info=True)
        if self._own_store:
            self.store.close()

    def run(self) -> None:
        """Run in the foreground until SIGINT or SIGTERM, then stop gracefully."""

        def handle(signum: int, frame: FrameType | None) -> None:
            log.info("worker %s: received signal %d, stopping", self.id, signum)
            self._stopping.set()
            self._listener.kick()

        previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            while not self._stopped.wait(0.5):
                pass
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            self.stop()

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running_activities(self) -> int:
        return self.concurrency - self._activities.free

    @property
    def concurrency(self) -> int:
        return self._activities.concurrency

    # -- the loop ----------------------------------------------------------------------

    def _activity_done(self, outcome: ActivityOutcome) -> None:
        self._outcomes.put(outcome)
        self._kicked = True
        self._listener.kick()

    def _main(self) -> None:
        backoff = 0.0
        in_outage = False
        grace_deadline: float | None = None
        try:
            while True:
                stopping = self._stopping.is_set()
                if stopping:
                    if grace_deadline is None:
                        grace_deadline = time.monotonic() + self.shutdown_grace
                    if self.running_activities == 0 and self._outcomes.empty() and not self._ran:
                        break
                    if time.monotonic() > grace_deadline:
                        log.warning(
                            "worker %s: %d activities still running at shutdown; "
                            "their leases will expire",
                            self.id,
                            self.running_activities,
                        )
                        break
                try:
                    busy = self._cycle(claim=not stopping)
                except Exception as exc:
                    backoff = min(max(backoff * 2, 0.05), 5.0)
                    outage = self.store.outage(exc)
                    if outage is None:
                        log.exception(
                            "worker %s: cycle failed; retrying in %.2f s", self.id, backoff
                        )
                    elif not in_outage:
                        log.warning(
                            "worker %s: %s; retrying with backoff until it is back", self.id, outage
                        )
                    in_outage = outage is not None
                    self._listener.wait(backoff)
                    continue
                if in_outage:
                    log.warning("worker %s: the database is reachable again; carrying on", self.id)
                    in_outage = False
                backoff = 0.0
                self.polls += 1
                if busy:
                    continue
                if self._rewarm and not stopping:
                    self._warm_one()
                    continue
                self._listener.wait(self._idle_timeout() if not stopping else 0.05)
                # Woken by others, by the clock (a timer), or by a finished activity.
                self._maybe_instances = self._maybe_activities = True
        finally:
            self._stopped.set()

    def _drain(self) -> list[ActivityOutcome]:
        outcomes = []
        while True:
            try:
                outcomes.append(self._outcomes.get_nowait())
            except queue.Empty:
                return outcomes

    def _cycle(self, claim: bool = True) -> bool:
        """One transaction of bookkeeping and claims, then the claimed steps' code.

        Claims are skipped when the worker knows there is nothing to claim: it tracks
        what its own writes made due, is told by its listener about others' writes,
        and claims anyway every ``_FORCED_CLAIM`` seconds in case a signal was missed.
        """
        outcomes = self._drain()
        ran, self._ran = self._ran, []
        if self._isolating:
            claim = False
            outcomes, ran = self._one_at_a_time(outcomes, ran)
        kicked, self._kicked = self._kicked, False
        if self._listener.poll() and not kicked:
            self._maybe_instances = self._maybe_activities = True
        lease = f"{self.id}:{next(self._lease_counter)}"
        # Eager steps: those these results make due, run now (outside the transaction)
        # where this worker holds the instance as its last step left it. Each commits
        # with its result, if the instance is still so.
        eager = self._run_eager(outcomes, lease) if claim else []
        taken_up = {id(o) for o, _ in eager}
        queued = [o for o in outcomes if id(o) not in taken_up]
        try:
            # Only a commit of steps must reach disk before it returns. The rest (results,
            # claims, leases) is made durable by the next such commit, or redone after a
            # database crash: an activity then runs again, as activities may.
            durable = bool(ran or eager)
            with self.store.transaction(origin=self._listener, durable=durable) as tx:
                now = self.clock.now()
                # The throttles below are intervals: they run on the monotonic clock, so
                # that a wall clock set back (or a test's clock jumping) cannot stall them.
                tick = time.monotonic()
                if tick >= self._next_forced_claim:
                    self._maybe_instances = self._maybe_activities = True
                    self._next_forced_claim = tick + _FORCED_CLAIM
                # Every name lock of the cycle first: before any instance lock.
                _step.lock_names(tx, ran + [ep for _, ep in eager])
                if queued:
                    tx.lock_names("activity", retry_names(queued), exclusive=False)
                committed = [self._steps.commit(tx, ran, now)] if ran else []
                check_eager: Callable[[], None] | None = None
                if eager:
                    written, check_eager = self._commit_eager(tx, eager, now, lease)
                    committed.append(written)
                for done in committed:
                    self._committed(done)
                delivered = deliver_outcomes(tx, queued, now) if queued else None
                self._maybe_instances |= bool(queued)
                if tick >= self._next_renewal:
                    leases = self._activities.leases()
                    if leases:
                        tx.renew_leases(leases, now + self.lease_seconds)
                    tx.put_worker(self._heartbeat(now))
                    self._next_renewal = tick + self.lease_seconds / 3
                resumed = 0
                if claim and tick >= self._next_resume_check:
                    due = tx.due_resumes(now, self.batch_size)
                    if due:
                        resumed = len(
                            _control.resume(
                                tx,
                                due,
                                reason="scheduled resume",
                                by="schedule",
                                now=now,
                                hand_over=True,
                            )
                        )
                    for kind, name in tx.due_standing_resumes(now):
                        resumed += _control.resume_type(
                            tx, kind, name, reason="scheduled resume", by="schedule", now=now
                        )
                    self._next_resume_check = tick + 0.2
                leased: list[ActivityRow] = []
                claimed: list[Claimed] = []
                # Whether everything due was claimed here, so no one else need be woken.
                took_all = claim
                want = min(self._activities.free, self.batch_size)
                claim_activities = claim and self._activity_names and self._maybe_activities
                if claim_activities and want > 0:
                    leased = tx.claim_activities(
                        self._activity_names,
                        now,
                        want,
                        lease,
                        now + self.lease_seconds,
                        exclude=self._unservable(),
                    )
                if check_eager is not None:  # answered by the claim's read, if there was one
                    check_eager()
                if leased:
                    # Those that could not start in time never will: their lease is
                    # taken back before this commits (another worker may take them).
                    for row in self._activities.start(leased):
                        assert row.lease is not None
                        tx.retry_activity(row.id, row.lease, row.attempt, now)
                if claim_activities:
                    self._maybe_activities = len(leased) >= want
                    took_all = took_all and len(leased) < want
                if claim and self._orchestrators and self._maybe_instances:
                    claimed = self._steps.claim(
                        tx, now, self.batch_size, lease, now + self.lease_seconds
                    )
                    self._maybe_instances = len(claimed) >= self.batch_size
                    took_all = took_all and not self._maybe_instances
                if took_all:
                    tx.wakes.discard(WORK)
                if delivered is not None:
                    delivered()
                for done in committed:
                    done.finish()
        except BaseException as exc:
            if self._isolating and self._is_fault(exc) and len(outcomes) + len(ran) == 1:
                self._quarantine(outcomes, ran, exc)
                return True
            # Nothing of this transaction happened: record and commit again next cycle.
            for outcome in outcomes:
                self._outcomes.put(outcome)
            self._ran = ran + self._ran
            if self._is_fault(exc) and (outcomes or ran):
                # One of them may be what fails: commit them one by one (and nothing
                # else) until each is written or known to fail alone, so that it cannot
                # hold up the others.
                self._isolating = len(outcomes) + len(ran)
            self._maybe_instances = self._maybe_activities = True
            # Eager steps spent their replayers; rebuild them when idle if still needed.
            self._rewarm.update(dict.fromkeys(ep.instance_id for _, ep in eager))
            if eager and isinstance(exc, Exception) and self.store.outage(exc) is None:
                # An eager step presumed wrong (and its writes may have failed for it):
                # redo the cycle at once. The eager steps' replayers were not put back,
                # so their results now go the usual way; a lasting fault recurs then.
                log.debug("worker %s: eager steps redone the usual way: %s", self.id, exc)
                return True
            raise
        if self._isolating:
            self._isolating = max(self._isolating - len(outcomes) - len(ran), 0)
        # Orchestrator code runs here, outside any transaction; the next cycle commits.
        for c in claimed:
            self._running = (c.row.instance_id, c.row.name, time.monotonic())
            self._ran.append(self._steps.run(c))
        self._running = None
        busy = bool(outcomes or ran or leased or claimed or resumed)
        if busy:
            self.cycles += 1
        return busy

    # -- one bad item must not stop the others --------------------------------------------

    def _is_fault(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a fault of what was written (not an outage of the database,
        not a conflict that a retry resolves)."""
        return (
            isinstance(exc, Exception)
            and self.store.outage(exc) is None
            and not self.store.is_transient(exc)
            and not isinstance(exc, _StaleEagerSteps)
        )

    def _one_at_a_time(
        self, outcomes: list[ActivityOutcome], ran: list[Step]
    ) -> tuple[list[ActivityOutcome], list[Step]]:
        """While isolating: keep one item for this cycle, queue the rest again."""
        if ran:
            self._ran = ran[1:] + self._ran
            for outcome in outcomes:
                self._outcomes.put(outcome)
            return [], ran[:1]
        for outcome in outcomes[1:]:
            self._outcomes.put(outcome)
        return outcomes[:1], []

    def _quarantine(
        self, outcomes: list[ActivityOutcome], ran: list[Step], exc: BaseException
    ) -> None:
        """The one item of a cycle failed alone: it cannot be written. A step fails its
        instance instead; a result becomes a failure of its activity (retried by its
        policy). If that cannot be written either, it is dropped: the lease runs out, and
        the work is claimed again (a step claimed too often fails its instance)."""
        problem = storable_text(f"{type_name(type(exc))}: {exc}")
        self._isolating = max(self._isolating - 1, 0)
        for ep in ran:
            log.error(
                "worker %s: the step of %s could not be stored: %s",
                self.id,
                ep.instance_id,
                problem,
            )
            self._steps.cache.drop(ep.instance_id)
            if not ep.quarantined:
                failure = Failure(
                    "tenuto.StepNotStored", f"the step could not be stored: {problem}"
                )
                failed = _step.failed(ep.row, failure, self.clock.now())
                failed.quarantined = True
                self._ran.append(failed)
        for o in outcomes:
            log.error(
                "worker %s: the result of activity %r of %s could not be stored: %s",
                self.id,
                o.row.name,
                o.row.instance_id,
                problem,
            )
            if not o.quarantined:
                message = f"the result of activity {o.row.name!r} could not be stored: {problem}"
                failure = Failure("tenuto.ResultNotStored", message)
                self._outcomes.put(
                    ActivityOutcome(o.row, None, failure, o.seconds, quarantined=True)
                )
        if self._ran or not self._outcomes.empty():
            self._isolating = max(self._isolating, 1)

    def _run_eager(
        self, outcomes: list[ActivityOutcome], lease: str
    ) -> list[tuple[ActivityOutcome, Step]]:
        """Run the eager steps: those that results of quick successful activities make
        due, where the replay cache holds their instance as this worker's last step left
        it.

        An eager step turns out stale if the instance changed while its activity ran (a
        pause, an event, a step elsewhere); its replayer, advanced past what the database
        holds, is then dropped, and the instance's next step replays its whole history.
        That is cheap for a short history. For a longer one, the instance is read first
        (one read for all of them), and a changed one is left to the usual way with its
        replayer intact.
        """
        # Several results for one instance go the usual way, to be taken in one step.
        per_instance = collections.Counter(o.row.instance_id for o in outcomes)
        candidates: list[tuple[ActivityOutcome, InstanceRow]] = []
        for o in outcomes:
            if (
                o.failure is not None  # retried or not, a failure goes the usual way
                or o.seconds >= self.eager_steps_below
                or per_instance[o.row.instance_id] > 1
            ):
                continue
            row = self._steps.cache.row_of(o.row.instance_id)
            if row is not None:
                candidates.append((o, row))
        long = [
            (row.instance_id, row.execution_id, row.history_len)
            for _, row in candidates
            if row.history_len > _EAGER_UNREAD_HISTORY
        ]
        if long:
            try:
                unchanged = self.store.read(lambda r: r.as_left(long, self.clock.now()))
            except Exception:  # the cycle's transaction meets the fault, if it lasts
                unchanged = set()
            candidates = [
                (o, row)
                for o, row in candidates
                if row.history_len <= _EAGER_UNREAD_HISTORY or row.instance_id in unchanged
            ]
        steps = []
        for o, row in candidates:
            self._running = (row.instance_id, row.name, time.monotonic())
            result = completed_event(o, self.clock.now())
            ep = self._steps.run_on_result(o.row.instance_id, o.row.execution_id, result, lease)
            if ep is not None:
                steps.append((o, ep))
        self._running = None
        return steps

    def _commit_eager(
        self, tx: Tx, steps: list[tuple[ActivityOutcome, Step]], now: float, lease: str
    ) -> tuple[Committed, Callable[[], None]]:
        """Write the eager steps, each with its result, presuming that every instance is
        still as its step left it and every result's activity still this worker's.

        The presumption is checked by the store in the same transaction; its answer is
        read with the transaction's next read, not now (on PostgreSQL, a round trip
        saved). Returns what was written, and the check, to call before any activity
        starts and before the transaction commits: it raises :class:`_StaleEagerSteps`,
        and the transaction must then roll back, if any presumption was wrong.
        """
        answer = tx.claim_for_results(
            [
                (
                    ep.instance_id,
                    ep.row.execution_id,
                    ep.row.history_len,
                    o.row.id,
                    o.row.lease or "",
                )
                for o, ep in steps
            ],
            now,
            lease,
            now + self.lease_seconds,
        )
        committed = self._steps.commit(tx, [ep for _, ep in steps], now, leased_here=True)

        def check() -> None:
            taken = answer()
            stale = [ep.instance_id for _, ep in steps if not taken.get(ep.instance_id)]
            if stale:
                raise _StaleEagerSteps(stale)

        tx.after_commit(lambda: self._count_eager(committed.count))
        return committed, check

    def _unservable(self) -> list[str]:
        """Activity names not to claim now: the ``async`` ones while an activity blocks
        their event loop (they could not start; other workers may take them)."""
        if self._activities.loop_blocked_for() > 0:
            return self._async_names
        return []

    def _heartbeat(self, now: float) -> WorkerRow:
        """This worker's row in the list of workers (see :meth:`tenuto.Client.workers`)."""
        return WorkerRow(
            id=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            kind="tenuto",
            started_at=self._started_at,
            last_seen=now,
            lease_seconds=self.lease_seconds,
            orchestrators=dumps(list(self._orchestrators)),
            activities=dumps(list(self._activity_names)),
            running=self.running_activities,
        )

    def _count_eager(self, n: int) -> None:
        self.eager_steps += n

    def _watch(self) -> None:
        """Warn, once per step, about an orchestration step that runs too long: its code
        blocks or never yields, and this worker does nothing else meanwhile. Warn, once
        per blockage, about an ``async`` activity that blocks the event loop."""
        warned: tuple[str, str, float] | None = None
        loop_warned = False
        while not self._stopped.wait(min(1.0, self.step_warning / 4)):
            blocked = self._activities.loop_blocked_for()
            if blocked > 1.0 and not loop_warned:
                log.warning(
                    "worker %s: the event loop of async activities has been blocked for "
                    "%.1f s (running: %s); an async def activity must not call blocking "
                    "code (time.sleep, blocking I/O): await asyncio.sleep, use "
                    "asyncio.to_thread, or make it a plain def. Until it unblocks, this "
                    "worker claims no async activity",
                    self.id,
                    blocked,
                    ", ".join(self._activities.running_async()) or "none",
                )
            loop_warned = blocked > 1.0
            step = self._running
            if step is None or step is warned:
                continue
            instance_id, name, since = step
            if time.monotonic() - since >= self.step_warning:
                log.warning(
                    "worker %s: the step of instance %s (orchestrator %r) has run for %.1f s "
                    "without yielding; orchestrator code must not block or loop: do slow work "
                    "in activities, and wait with ctx.create_timer or ctx.wait_for_event",
                    self.id,
                    instance_id,
                    name,
                    time.monotonic() - since,
                )
                warned = step

    def _committed(self, committed: Committed) -> None:
        self._maybe_activities |= committed.activities
        self._maybe_instances |= committed.instances
        self._rewarm.update(dict.fromkeys(committed.discarded))

    def _warm_one(self) -> None:
        """Rebuild the replayer of one instance whose cached one a change spent (most
        often a pause that came during its step): while it is paused, so that the step
        after its resume does not replay its whole history first."""
        instance_id = next(iter(self._rewarm))
        del self._rewarm[instance_id]
        if instance_id in self._steps.cache:
            return
        try:
            row, history = self.store.read(
                lambda r: (r.get_instance(instance_id), r.load_history(instance_id))
            )
            if row is not None and row.name in self._orchestrators:
                self._steps.warm(row, history)
        except Exception:  # the step that needs it replays it then, and reports any fault
            log.debug("worker %s: could not rebuild %s", self.id, instance_id, exc_info=True)

    def _idle_timeout(self) -> float:
        # With no room for activities, their due times are moot: a finishing activity
        # wakes the worker anyway.
        activities = self._activity_names if self._activities.free > 0 else []
        unservable = self._unservable()
        if unservable:  # while they cannot start, their due times are moot too
            activities = [a for a in activities if a not in unservable]
        try:
            at = self.store.read(lambda r: r.next_work_at(self._orchestrators, activities))
        except Exception as exc:
            if self.store.outage(exc) is None:
                log.exception("worker %s: could not read the next due time", self.id)
            return self.poll_interval
        timeout = self.poll_interval
        now = self.clock.now()
        if at is not None:
            timeout = min(timeout, max(at - now, 0.0))
        # Leases to renew, and in any case the heartbeat that keeps it in the list of
        # workers (due at the same cadence).
        return min(timeout, max(self._next_renewal - time.monotonic(), 0.0))

    def __repr__(self) -> str:
        return f"<Worker {self.id} {self.store.url}>"


class _StaleEagerSteps(Exception):
    """Instances changed under eager steps (paused, given an event, stepped elsewhere, or
    their activity's lease ran out): the cycle is redone, their results the usual way."""
