"""Running activities, and recording how they ended.

Plain functions run on a thread pool, ``async def`` activities on an event loop in a
thread of their own; together no more than the worker's concurrency run at once.

:meth:`ActivityRunner.start` returns only once every activity it was given has been
entered. The worker calls it inside the transaction that leases those activities, so an
activity's start always precedes the commit of its lease, and a ``pause`` (which must
wait for that commit) returns after every activity that will run has started: after
``pause()`` returns, no activity of the instance starts.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from . import _control, _failures, metrics, tracing
from . import history as h
from ._json import dumps, loads
from .app import App
from .retry import RetryPolicy
from .status import Failure
from .store.base import ActivityRow, NewMessage, Tx

log = logging.getLogger("tenuto.worker")


@dataclass(frozen=True, slots=True)
class ActivityInfo:
    """What a running activity can know about itself (``tenuto.activity_info()``)."""

    instance_id: str
    name: str
    task_id: int
    attempt: int
    #: When the worker started this attempt (epoch seconds), taken before the lease
    #: that covers it commits: a pause that returned earlier than this never happens.
    started_at: float

    @property
    def idempotency_key(self) -> str:
        """A key that is the same for every attempt of this activity call."""
        return f"{self.instance_id}/{self.task_id}"


_current: contextvars.ContextVar[ActivityInfo] = contextvars.ContextVar("tenuto_activity")


def activity_info() -> ActivityInfo:
    """Inside an activity: which instance, call and attempt this is."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("activity_info() is only available inside a running activity") from None


@dataclass(slots=True)
class ActivityOutcome:
    """How one activity attempt ended: ``result`` if ``failure`` is ``None``."""

    row: ActivityRow
    result: Any = None
    failure: Failure | None = None
    #: How long the attempt ran, in seconds.
    seconds: float = 0.0
    #: The failure stands in for a result that could not be stored.
    quarantined: bool = False


#: How long a worker waits for the activities it leased to enter their functions before
#: it gives up on those that did not (they never start; the lease is taken back).
ENTER_TIMEOUT = 1.0
#: The event loop of ``async def`` activities counts as blocked once it has not run its
#: heartbeat for this long (seconds).
LOOP_BLOCKED_AFTER = 0.5
_HEARTBEAT = 0.1


class _Latch:
    def __init__(self, count: int) -> None:
        self._count = count
        self._cond = threading.Condition()

    def count_down(self) -> None:
        with self._cond:
            self._count -= 1
            if self._count <= 0:
                self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._count <= 0, timeout)


class ActivityRunner:
    """Executes leased activities and reports each outcome to ``on_done``.

    User code may raise anything (``SystemExit``, ``KeyboardInterrupt``, an exception
    whose ``__str__`` raises): the attempt fails with it, and the worker goes on. An
    ``async def`` activity that blocks the event loop delays only the other ``async``
    activities: while the loop is blocked the worker claims none (see
    :meth:`loop_blocked_for`), and activities that cannot enter in time are given back.
    """

    def __init__(
        self, app: App, concurrency: int, on_done: Callable[[ActivityOutcome], None]
    ) -> None:
        self.app = app
        self.concurrency = concurrency
        self._on_done = on_done
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="tenuto-activity")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._beat = 0.0  # monotonic time of the event loop's last heartbeat
        self._lock = threading.Lock()
        self.running: dict[int, ActivityRow] = {}
        self._started: dict[int, float] = {}  # monotonic start of each running activity
        #: Activities handed to a thread or the loop that have not entered their function.
        self._entering: set[int] = set()

    @property
    def free(self) -> int:
        with self._lock:
            return self.concurrency - len(self.running)

    def leases(self) -> list[str]:
        with self._lock:
            return list({row.lease for row in self.running.values() if row.lease})

    def start(self, rows: list[ActivityRow]) -> list[ActivityRow]:
        """Start ``rows``; return once each one's function has been entered, or after
        :data:`ENTER_TIMEOUT` with those that have not: they will never start (the
        caller takes their lease back before it commits, so a pause that waits for
        that commit still finds nothing started after it)."""
        latch = _Latch(len(rows))
        with self._lock:
            for row in rows:
                self.running[row.id] = row
                self._entering.add(row.id)
        for row in rows:
            activity = self.app.get_activity(row.name)
            if activity.is_async:
                asyncio.run_coroutine_threadsafe(self._run_async(row, latch), self._event_loop())
            else:
                self._pool.submit(self._run_sync, row, latch)
        if latch.wait(timeout=ENTER_TIMEOUT):
            return []
        with self._lock:
            late = [row for row in rows if row.id in self._entering]
            for row in late:
                self._entering.discard(row.id)
                self.running.pop(row.id, None)
        log.warning(
            "%d activities did not start within %.1f s (%s); they are given back to be "
            "claimed again",
            len(late),
            ENTER_TIMEOUT,
            "the event loop of async activities is blocked"
            if self.loop_blocked_for() > 0
            else "the worker is overloaded",
        )
        return late

    def loop_blocked_for(self) -> float:
        """For how long the event loop of ``async`` activities has been blocked (by an
        activity calling blocking code), in seconds; 0 if it is not."""
        if self._loop is None:
            return 0.0
        lag = time.monotonic() - self._beat
        return lag if lag > LOOP_BLOCKED_AFTER else 0.0

    def running_async(self) -> list[str]:
        """The names of the ``async`` activities running now."""
        with self._lock:
            rows = list(self.running.values())
        return sorted({r.name for r in rows if self.app.get_activity(r.name).is_async})

    def _begin(self, row: ActivityRow, latch: _Latch) -> tuple[Any, Any, ActivityInfo] | None:
        """Enter an activity: ``None`` if it was given back meanwhile (it must not run)."""
        with self._lock:
            if row.id not in self._entering:
                return None
            self._entering.discard(row.id)
        try:
            metrics.activities_started.labels(row.name).inc()
            activity = self.app.get_activity(row.name)
            info = ActivityInfo(row.instance_id, row.name, row.task_id, row.attempt, time.time())
            self._started[row.id] = time.monotonic()
            return activity, loads(row.input), info
        finally:
            latch.count_down()

    def _run_sync(self, row: ActivityRow, latch: _Latch) -> None:
        try:
            begun = self._begin(row, latch)
            if begun is None:
                return
            activity, arg, info = begun
            token = _current.set(info)
            try:
                with tracing.activity_span(row):
                    value = activity.fn(arg) if activity.takes_input else activity.fn()
            finally:
                _current.reset(token)
        except BaseException as exc:  # user code: SystemExit too fails only this attempt
            self._finish(row, None, exc)
        else:
            self._finish(row, value, None)

    async def _run_async(self, row: ActivityRow, latch: _Latch) -> None:
        try:
            begun = self._begin(row, latch)
            if begun is None:
                return
            activity, arg, info = begun
            _current.set(info)
            with tracing.activity_span(row):
                value = await (activity.fn(arg) if activity.takes_input else activity.fn())
        except BaseException as exc:  # SystemExit would otherwise stop the whole loop
            self._finish(row, None, exc)
        else:
            self._finish(row, value, None)

    def _finish(self, row: ActivityRow, value: Any, exc: BaseException | None) -> None:
        failure = _failure_of(row, value, exc)
        with self._lock:
            self.running.pop(row.id, None)
        seconds = time.monotonic() - self._started.pop(row.id, time.monotonic())
        (metrics.activities_failed if failure else metrics.activities_completed).labels(
            row.name
        ).inc()
        self._on_done(ActivityOutcome(row, None if failure else value, failure, seconds))

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="tenuto-async-activities", daemon=True
                )
                self._beat = time.monotonic()
                loop.call_soon_threadsafe(self._heartbeat, loop)
                thread.start()
                self._loop, self._loop_thread = loop, thread
            return self._loop

    def _heartbeat(self, loop: asyncio.AbstractEventLoop) -> None:
        self._beat = time.monotonic()
        loop.call_later(_HEARTBEAT, self._heartbeat, loop)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            loop, thread = self._loop, self._loop_thread
            self._loop = None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout=5)
            if not loop.is_running():
                loop.close()


def _failure_of(row: ActivityRow, value: Any, exc: BaseException | None) -> Failure | None:
    """How an attempt failed (``None``: it returned ``value``, a value tenuto can store)."""
    if exc is not None:
        return Failure.from_exception(exc)
    try:
        dumps(value, f"the output of activity {row.name!r}")
    except Exception as error:  # not JSON, or too deep to encode
        return Failure.from_exception(error)
    return None


def completed_event(outcome: ActivityOutcome, at: float) -> h.Event:
    """The ``TaskCompleted`` history event of a successful outcome."""
    return h.Event(h.TASK_COMPLETED, at, {"task_id": outcome.row.task_id, "result": outcome.result})


def deliver_outcomes(tx: Tx, outcomes: list[ActivityOutcome], now: float) -> Callable[[], None]:
    """Settle activity outcomes, exactly once each: retry a failure the policy retries;
    otherwise delete the activity and queue its result for its orchestration.

    A result counts only if its lease is still held: the row is deleted as the result is
    queued, so a result delivered late by a worker that lost its lease is discarded.
    Returns a function to call before the transaction ends, to log what happened.
    """
    delivered: list[ActivityOutcome] = []
    # Failures whose policy pauses the instance, once their delivery is known to count.
    pausing: list[ActivityOutcome] = []
    items: list[tuple[int, str, NewMessage]] = []
    retried = retry_names(outcomes)
    if retried:
        # Held or not is decided under the names' lock (see tenuto._step.write), and
        # in the lock order of every transaction: names, instances, then activities.
        tx.lock_names("activity", retried, exclusive=False)
        tx.lock_instances(sorted({o.row.instance_id for o in outcomes}))
    for o in outcomes:
        row = o.row
        assert row.lease is not None
        if o.failure is None:
            event = completed_event(o, now)
        else:
            policy = _policy(row)
            if policy is not None and policy.retries(o.failure.type, row.attempt):
                delay = policy.delay(row.attempt)
                if tx.retry_activity(row.id, row.lease, row.attempt + 1, now + delay):
                    _track_retry(tx, row, o.failure, delay)
                else:
                    _lost(row)
                continue
            if _failures.pauses(row.retry):
                pausing.append(o)
            event = h.Event(
                h.TASK_FAILED,
                now,
                {
                    "task_id": row.task_id,
                    "failure": o.failure.to_json(),
                    "attempts": row.attempt,
                },
            )
        delivered.append(o)
        items.append((row.id, row.lease, NewMessage(row.instance_id, row.execution_id, event, now)))
    if items:
        tx.wake()
    taken = tx.deliver_results(items, now)

    def finish() -> None:
        ids = taken()
        for o in delivered:
            if o.row.id not in ids:
                _lost(o.row)
            elif o.failure is not None:
                _track_failure(tx, o.row, o.failure)
        paused = [(o.row, o.failure) for o in pausing if o.row.id in ids and o.failure]
        if paused:
            _failures.pause_on_failures(tx, paused, now)

    return finish


def _policy(row: ActivityRow) -> RetryPolicy | None:
    return RetryPolicy.from_json(loads(row.retry)) if row.retry else None


def retry_names(outcomes: Sequence[ActivityOutcome]) -> list[str]:
    """The names of the activities among ``outcomes`` that are to be retried, or that
    pause their instance (whose lock is then taken early, in the order of locks)."""
    return sorted(
        {
            o.row.name
            for o in outcomes
            if o.failure is not None
            and (policy := _policy(o.row)) is not None
            and (policy.retries(o.failure.type, o.row.attempt) or policy.on_exhausted == "pause")
        }
    )


def _track_failure(tx: Tx, row: ActivityRow, failure: Failure) -> None:
    _control.track_each(
        tx,
        "activity_failed",
        [row.instance_id],
        activity=row.name,
        attempts=row.attempt,
        error=f"{failure.type}: {failure.message}",
    )


def _track_retry(tx: Tx, row: ActivityRow, failure: Failure, delay: float) -> None:
    _control.track_each(
        tx,
        "activity_retry",
        [row.instance_id],
        activity=row.name,
        attempt=row.attempt,
        delay=round(delay, 3),
        error=f"{failure.type}: {failure.message}",
    )


def _lost(row: ActivityRow) -> None:
    # The instance finished or moved on, or the lease expired and another worker took
    # the activity over: this result is not the one that counts.
    log.info(
        "discarding the result of activity %r of %s: its lease is gone", row.name, row.instance_id
    )
