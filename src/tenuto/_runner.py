"""Running orchestration steps for one worker, with its cache of live replayers.

A step of an instance (see :mod:`tenuto._step`) happens in three phases, so that
orchestrator code never runs while the database is locked (a slow or stuck orchestrator
cannot block clients or other workers):

1. :meth:`StepRunner.claim`, in a transaction: lease instances with work due and read
   their messages and the history the worker does not hold in memory yet.
2. :meth:`StepRunner.run`, outside any transaction: replay and run the code.
3. :meth:`StepRunner.commit`, in a later transaction: write each step
   (:func:`tenuto._step.write`) if the instance is still leased by this worker, still
   live and unpaused, and its history unchanged. Otherwise (it was paused or terminated
   meanwhile, or the lease ran out) the step is discarded; its messages stay in the
   inbox for a later step.

An *eager step* skips phase 1: when an activity result reaches the worker that took the
instance's last step, and the cache still holds the instance as that step left it, the
worker runs the step the result makes due (:meth:`StepRunner.run_on_result`) outside
any transaction, then commits the result and the step together, after the store has
confirmed, under a lease, that the instance did not change meanwhile (no step elsewhere,
no pause, nothing else due); otherwise the step is discarded and the result is queued
as usual.

Live replayers are cached between steps, keyed by instance. A cached replayer is used
only if it is at or behind the stored history of the same execution; events stored since
(a pause record, or steps another worker took) are applied to catch it up. Anything else
(a different execution, a longer history than stored, a rewind since) is a stale entry:
it is dropped and the instance is replayed from its full history. A replayer returns to
the cache only after its step committed, so a discarded step never leaves state behind;
the worker then rebuilds it when idle (:meth:`StepRunner.warm`), so that an instance
paused in the middle of a step resumes warm.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from . import _control, _failures, _step, tracing
from . import history as h
from ._step import MAX_CLAIMS, Committed, Step
from .app import App
from .clock import Clock
from .replay import Replayer
from .status import Failure, Status
from .store.base import InstanceRow, Tx

log = logging.getLogger("tenuto.worker")


class ReplayCache:
    """Live replayers by instance id, least recently used first out, each with the
    instance row as its last committed step left it."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[Replayer, InstanceRow]] = OrderedDict()

    def take(self, row: InstanceRow) -> Replayer | None:
        """Remove and return the cached replayer of ``row`` if it is still usable."""
        item = self._items.pop(row.instance_id, None)
        if item is None:
            return None
        replayer = item[0]
        if replayer.execution_id != row.execution_id or replayer.history_len > row.history_len:
            return None  # stale: the instance moved on without this worker
        return replayer

    def take_as_left(self, instance_id: str) -> tuple[Replayer, InstanceRow] | None:
        """Remove and return a replayer with the row its last step left: what a step on
        a result can run from, if the instance did not change since (checked when it
        commits)."""
        return self._items.pop(instance_id, None)

    def row_of(self, instance_id: str) -> InstanceRow | None:
        """The row a cached instance's last step left (the entry stays cached)."""
        item = self._items.get(instance_id)
        return None if item is None else item[1]

    def put(self, replayer: Replayer, row: InstanceRow) -> None:
        if self.capacity <= 0:
            return
        self._items[replayer.instance_id] = (replayer, row)
        self._items.move_to_end(replayer.instance_id)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def drop(self, instance_id: str) -> None:
        self._items.pop(instance_id, None)

    def __contains__(self, instance_id: object) -> bool:
        return instance_id in self._items

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Claimed:
    """An instance leased for one step, with what the step needs to read."""

    row: InstanceRow
    messages: list[h.Message]
    history: list[h.Event]
    replayer: Replayer | None


class StepRunner:
    """Claims, runs and commits steps for one worker, with its replay cache."""

    def __init__(self, app: App, cache: ReplayCache, clock: Clock) -> None:
        self.app = app
        self.cache = cache
        self.clock = clock

    # -- phase 1: claim ----------------------------------------------------------------

    def claim(
        self, tx: Tx, now: float, limit: int, lease: str, lease_until: float
    ) -> list[Claimed]:
        """Lease instances with work due, and read what their steps need."""
        claimed = []
        for row, messages in tx.claim_steps(
            self.app.orchestrator_names, now, limit, lease, lease_until
        ):
            replayer = self.cache.take(row)
            start = 0 if replayer is None else replayer.history_len
            history = tx.load_history(row.instance_id, start) if start < row.history_len else []
            if replayer is not None and any(e.type == h.EXECUTION_REWOUND for e in history):
                # Rewound since: events the replayer applied may be forgotten now.
                replayer, history = None, tx.load_history(row.instance_id)
            claimed.append(Claimed(row, messages, history, replayer))
        return claimed

    # -- phase 2: run ------------------------------------------------------------------

    def run(self, claimed: Claimed) -> Step:
        """Run one step; never raises (an engine fault fails the instance instead)."""
        now = self.clock.now()
        row = claimed.row
        try:
            if row.claims > MAX_CLAIMS:
                return _step.abandoned(row, now, "its code crashes the worker or never yields")
            with tracing.step_span(row, claimed.history) as span:
                step = self._run(claimed, now)
                if span is not None:
                    _traced(step, span)
            return step
        except Exception as exc:
            log.exception("step of instance %s failed unexpectedly", row.instance_id)
            return _step.failed(row, Failure.from_exception(exc), now)

    def run_on_result(
        self, instance_id: str, execution_id: str, result: h.Event, lease: str
    ) -> Step | None:
        """Run the step an activity result makes due, before the result is stored, from
        the replayer and row this worker's last step of the instance left in the cache;
        ``None`` if there are none (or they are of another execution).

        The step presumes the instance is still as that step left it, with nothing else
        due; it is committed only once the store has confirmed so, under ``lease``, in the
        transaction that takes the result (:meth:`~tenuto.store.base.Tx.claim_for_results`).
        """
        item = self.cache.take_as_left(instance_id)
        if item is None:
            return None
        replayer, row = item
        if (
            row.execution_id != execution_id
            or row.status is not Status.RUNNING
            or replayer.history_len != row.history_len
            or replayer.outcome is not None
        ):
            self.cache.put(replayer, row)
            return None
        message = h.Message(0, instance_id, execution_id, result, result.ts)
        # next_due dates the step for the step-latency metric, as a claimed step's does.
        row = dataclasses.replace(row, lease=lease, next_due=result.ts)
        step = self.run(Claimed(row, [message], [], replayer))
        step.consumed.clear()  # the result never reached the inbox: nothing to delete
        return step

    def warm(self, row: InstanceRow, history: Sequence[h.Event]) -> None:
        """Replay a live instance from ``history`` (its first ``row.history_len`` events)
        into the cache, so that its next step finds it warm."""
        if row.status.is_terminal or row.instance_id in self.cache:
            return
        replayer = Replayer(
            self.app, self.app.get_orchestrator(row.name), row.instance_id, row.execution_id
        )
        replayer.replay(history[: row.history_len])
        if replayer.mismatch is None:  # else its next step replays, and pauses it
            self.cache.put(replayer, row)

    def _run(self, claimed: Claimed, now: float) -> Step:
        row = claimed.row
        replayer = claimed.replayer or Replayer(
            self.app, self.app.get_orchestrator(row.name), row.instance_id, row.execution_id
        )
        replayer.replay(claimed.history)
        held = None if replayer.mismatch else replayer.failure_to_hold(claimed.messages)
        if held is not None:
            # A child failed under a call that pauses on failure: the code must not see
            # it; the instance pauses, its inbox as it is.
            reason = _failures.sub_failure_reason(held)
            return _step.paused(row, now, reason, _control.FAILURE, {"failed": held})
        new_events, consumed = _step.new_events(row, claimed.messages, now, replayer)
        if replayer.mismatch is not None:
            # The code changed under the instance: pause it, its history and inbox as
            # they are, until the code is fixed (or rolled back) and it is resumed.
            return _step.paused(row, now, replayer.mismatch.mismatch, _control.NONDETERMINISM)
        custom_status: str | _step._Unchanged | None = _step.UNCHANGED
        if replayer.custom_status_changed:
            custom_status = replayer.custom_status_json
            replayer.custom_status_changed = False
        return _step.build(
            _step.Decision(
                row,
                now,
                new_events,
                consumed,
                replayer.take_actions(),
                replayer.outcome,
                custom_status,
                replayer,
                replayer.awaited_events() if replayer.outcome is None else None,
            )
        )

    # -- phase 3: commit ---------------------------------------------------------------

    def commit(
        self, tx: Tx, steps: Sequence[Step], now: float, *, leased_here: bool = False
    ) -> Committed:
        """Write the steps whose instance is still theirs (``leased_here``: known to be,
        as this transaction leased them); keep their replayers once written."""
        committed = _step.write(tx, steps, now, self.clock, leased_here=leased_here)
        for instance_id in committed.discarded:
            self.cache.drop(instance_id)
        for step in committed.written:
            if step.finished or step.restarted:
                self.cache.drop(step.instance_id)

        def keep() -> None:
            for step in committed.written:
                if step.replayer is not None:
                    self.cache.put(step.replayer, _row_after(step))

        tx.after_commit(keep)
        return committed


def _row_after(step: Step) -> InstanceRow:
    """The instance row as the committed ``step`` left it."""
    return dataclasses.replace(step.row, **step.changes)


def _traced(step: Step, span: object) -> None:
    """Run a traced step's activities and children under its span."""
    traceparent = tracing.step_traceparent(span)
    for activity in step.activities:
        activity.trace_parent = traceparent
    for child in step.children:
        child.trace_parent = traceparent
    status = step.changes.get("status")
    tracing.step_finished(span, status.value if isinstance(status, Status) else None)
