"""Orchestration episodes: apply an instance's new messages, run its code, commit.

An episode takes the messages waiting for one instance (activity results, fired timers,
external events), turns them into history events, lets the orchestrator code react, and
commits the new history, the actions the code took and the instance's new state.

It happens in three phases, so that orchestrator code never runs while the database is
locked (a slow or stuck orchestrator cannot block clients or other workers):

1. :meth:`EpisodeRunner.claim`, in a transaction: lease instances with work due and read
   their messages and the history the worker does not hold in memory yet.
2. :meth:`EpisodeRunner.run`, outside any transaction: replay and run the code.
3. :meth:`EpisodeRunner.commit`, in a later transaction: write each episode's results if
   the instance is still leased by this worker, still live and unpaused, and its history
   unchanged. Otherwise (it was paused or terminated meanwhile, or the lease ran out) the
   episode is discarded; its messages stay in the inbox for a later episode.

An *eager step* skips phase 1: when an activity result reaches the worker that took the
instance's last step, and the cache still holds the instance as that step left it, the
worker runs the step the result makes due (:meth:`EpisodeRunner.run_on_result`) outside
any transaction, then commits the result and the step together, after the store has
confirmed, under a lease, that the instance did not change meanwhile (no step elsewhere,
no pause, nothing else due); otherwise the step is discarded and the result is queued
as usual.

Live replayers are cached between episodes, keyed by instance. A cached replayer is used
only if it is at or behind the stored history of the same execution; events stored since
(a pause record, or steps another worker took) are applied to catch it up. Anything else
(a different execution, a longer history than stored) is a stale entry: it is dropped and
the instance is replayed from its full history. A replayer returns to the cache only after
its episode committed, so a discarded episode never leaves state behind; the worker then
rebuilds it when idle (:meth:`EpisodeRunner.warm`), so that an instance paused in the
middle of a step resumes warm.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import _control, _step, metrics
from . import history as h
from ._step import Episode
from ._wakeups import DONE, WORK
from .actions import (
    ContinuedAsNew,
)
from .app import App
from .clock import Clock
from .errors import InstanceExists
from .replay import Replayer
from .status import Failure, Status, type_name
from .store.base import InstanceRow, NewActivity, NewMessage, Tx
from .tracking import track

log = logging.getLogger("tenuto.worker")

#: An orchestration step claimed this many times without committing fails the instance:
#: its code keeps crashing the workers that run it (or never yields).
MAX_CLAIMS = 10


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


@dataclass(frozen=True, slots=True)
class Committed:
    """What committing a batch of episodes did."""

    count: int
    #: It queued activities.
    activities: bool
    #: It made other instances due (children, parents, restarts).
    instances: bool
    #: Call before the transaction ends, after its last read if possible: it records the
    #: activities a standing pause holds (a read the store may answer late).
    finish: Callable[[], None] = field(default=lambda: None)
    #: Instances whose step was discarded (they changed meanwhile), replayer and all.
    discarded: tuple[str, ...] = ()


class EpisodeRunner:
    """Claims, runs and commits episodes for one worker, with its replay cache."""

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
            claimed.append(Claimed(row, messages, history, replayer))
        return claimed

    # -- phase 2: run ------------------------------------------------------------------

    def run(self, claimed: Claimed) -> Episode:
        """Run one step; never raises (an engine fault fails the instance instead)."""
        now = self.clock.now()
        row = claimed.row
        try:
            if row.claims > MAX_CLAIMS:
                return _step.failed(
                    row,
                    Failure(
                        "tenuto.StepAbandoned",
                        f"the orchestration step was claimed {row.claims - 1} times without "
                        "completing: its code crashes the worker or never yields",
                    ),
                    now,
                    [],
                )
            return self._run(claimed, now)
        except Exception as exc:
            log.exception("step of instance %s failed unexpectedly", row.instance_id)
            return _step.failed(row, Failure.from_exception(exc), now)

    def run_on_result(
        self, instance_id: str, execution_id: str, result: h.Event, lease: str
    ) -> Episode | None:
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
        ep = self.run(Claimed(row, [message], [], replayer))
        ep.consumed.clear()  # the result never reached the inbox: nothing to delete
        return ep

    def warm(self, row: InstanceRow, history: Sequence[h.Event]) -> None:
        """Replay a live instance from ``history`` (its first ``row.history_len`` events)
        into the cache, so that its next step finds it warm."""
        if row.status.is_terminal or row.instance_id in self.cache:
            return
        replayer = Replayer(
            self.app, self.app.get_orchestrator(row.name), row.instance_id, row.execution_id
        )
        for event in history[: row.history_len]:
            replayer.apply(event, replaying=True)
        self.cache.put(replayer, row)

    def _run(self, claimed: Claimed, now: float) -> Episode:
        row = claimed.row
        replayer = claimed.replayer or Replayer(
            self.app, self.app.get_orchestrator(row.name), row.instance_id, row.execution_id
        )
        for event in claimed.history:
            replayer.apply(event, replaying=True)

        new_events: list[h.Event] = []

        def add(event: h.Event) -> None:
            replayer.apply(event, replaying=False)
            new_events.append(event)

        add(h.Event(h.ORCHESTRATOR_STARTED, now))
        if not replayer.started and replayer.outcome is None:
            add(_step.execution_started(row, now))

        delivered, consumed = _step.due_messages(row, claimed.messages, now)
        for msg in delivered:
            event = msg.event
            if replayer.outcome is not None:
                if isinstance(replayer.outcome, ContinuedAsNew) and event.type == h.EVENT_RAISED:
                    replayer.add_carry_over(event.data["name"], event.data.get("data"))
                continue
            if replayer.wants(event):
                add(event)
            else:
                log.debug("dropping duplicate %s for %s", event.type, row.instance_id)

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
            )
        )

    # -- phase 3: commit ---------------------------------------------------------------

    def _record_held(
        self, tx: Tx, activities: Sequence[NewActivity], now: float
    ) -> Callable[[], None]:
        """Record in history the new activities a standing activity pause holds. The
        read goes out now; its answer is used when the returned function is called."""
        names = sorted({a.name for a in activities})
        pauses = tx.standing_pauses_later(_control.ACTIVITY, names)

        def record() -> None:
            paused = {p.name: p for p in pauses()}
            if not paused:
                return
            done: set[tuple[str, str]] = set()
            for a in activities:
                sp = paused.get(a.name)
                if sp is None or (a.instance_id, a.name) in done:
                    continue
                done.add((a.instance_id, a.name))
                data = {"activity": sp.name, "reason": sp.reason, "by": sp.by}
                tx.annotate([a.instance_id], h.Event(h.ACTIVITY_HELD, now, data))
                _control.track_each(tx, "activity_held", [a.instance_id], **data)

        return record

    def commit(
        self, tx: Tx, episodes: Sequence[Episode], now: float, *, leased_here: bool = False
    ) -> Committed:
        """Write the episodes whose instance is still theirs (``leased_here``: known to
        be, as this transaction leased them)."""
        done: list[Episode] = []
        # Names before instances, instances in id order: the order of every transaction.
        lock_step_names(tx, episodes)
        episodes = sorted(episodes, key=lambda ep: ep.instance_id)
        results = tx.update_leased_instances(
            [(ep.instance_id, ep.lease, ep.row.history_len, ep.changes) for ep in episodes],
            verify=not leased_here,
        )
        discarded: list[str] = []
        for ep, ok in zip(episodes, results, strict=True):
            if ok:
                done.append(ep)
            else:
                # Paused, terminated or taken over meanwhile: its messages stay queued.
                tx.release_instances([ep.instance_id], ep.lease)
                self.cache.drop(ep.instance_id)
                discarded.append(ep.instance_id)
                log.debug("discarded a step of %s: the instance changed meanwhile", ep.instance_id)
        if not done:
            return Committed(0, False, False, discarded=tuple(discarded))
        consumed = [m for ep in done for m in ep.consumed]
        if consumed:
            tx.delete_messages(consumed)
        ended = [ep.instance_id for ep in done if ep.finished]
        if ended:
            tx.delete_pending_work(ended)
        renewed = [ep.instance_id for ep in done if ep.restarted]
        if renewed:
            # Events raised while this step ran were not delivered to it: they belong to
            # the new execution (as in the Durable Task Framework), not to the bin.
            tx.delete_pending_work(renewed, keep_events=True)
        for ep in done:
            if ep.restarted:
                tx.delete_history(ep.instance_id)
        history = [r for ep in done for r in ep.history]
        if history:
            # Leased here, unchecked yet: a taken number means the instance was not as
            # presumed, and the caller's check then rolls the transaction back.
            tx.append_history(history, skip_taken=leased_here)
        messages = [m for ep in done for m in ep.messages]
        wake = [ep.row.parent_instance_id for ep in done if ep.wake_parent]
        sent = [m for ep in done for m in ep.sent]
        if sent:
            # Events sent to instances that do not exist or have finished are dropped.
            targets = tx.statuses(sorted({m.instance_id for m in sent}))
            delivered = [
                m
                for m in sent
                if m.instance_id in targets and not targets[m.instance_id].is_terminal
            ]
            messages += delivered
            wake += [m.instance_id for m in delivered]
        children = [(ep, child) for ep in done for child in ep.children]
        if children:
            held = _control.hold_if_type_paused(tx, [c for _, c in children], now)
            inserted = tx.insert_instances([c for _, c in children])
            created = {c.instance_id for (_, c), ok in zip(children, inserted, strict=True) if ok}
            created |= _replace_finished_children(
                tx, [(ep, c) for ep, c in children if c.instance_id not in created]
            )
            _control.record_type_holds(
                tx, [(c, sp) for c, sp in held if c.instance_id in created], now
            )
            for ep, child in children:
                if child.instance_id not in created:
                    # The id is taken: the parent's call fails rather than adopt a stranger.
                    messages.append(_child_exists(ep, child, now))
                    wake.append(ep.instance_id)
        activities = [a for ep in done for a in ep.activities]
        finish: Callable[[], None] = _nothing
        if activities:
            # Whether a standing pause holds them is read under the names' lock (taken
            # above), so a pause or resume of their type cannot happen half before and
            # half after.
            tx.insert_activities(activities)
            finish = self._record_held(tx, activities, now)
        if messages:
            tx.add_messages(messages)
        live = [ep.instance_id for ep in done if not ep.finished]
        if live:
            # From the inbox, not from memory: messages may have come in during the step.
            tx.recompute_due(live, now)
        restarted = [ep.instance_id for ep in done if ep.restarted]
        if restarted:
            tx.set_due(restarted, now)
        if wake:
            tx.set_due([w for w in wake if w is not None], now)
        if activities or wake or restarted or any(ep.children for ep in done):
            tx.wake(WORK)
        if any(ep.finished for ep in done):
            tx.wake(DONE)
        for ep in done:
            if ep.finished or ep.restarted:
                self.cache.drop(ep.instance_id)

        def after() -> None:
            committed = self.clock.now()
            for ep in done:
                if ep.row.next_due is not None:
                    metrics.step_seconds.observe(max(committed - ep.row.next_due, 0.0))
                if ep.replayer is not None:
                    self.cache.put(ep.replayer, _row_after(ep))
                for event, extra in ep.tracked:
                    track(event, ep.instance_id, **extra)

        tx.after_commit(after)
        made_due = bool(wake or restarted or any(ep.children for ep in done))
        return Committed(len(done), bool(activities), made_due, finish, tuple(discarded))


def _nothing() -> None:
    pass


def _row_after(ep: Episode) -> InstanceRow:
    """The instance row as the committed ``ep`` left it."""
    return dataclasses.replace(ep.row, **ep.changes)


def _replace_finished_children(tx: Tx, taken: list[tuple[Episode, InstanceRow]]) -> set[str]:
    """Create again the children whose id is taken by a finished child of the same
    parent: a retried sub-orchestration (the Durable Task SDKs retry one under the id
    of its failed attempt, and the Durable Task Framework replaces it). Returns the ids
    created; an id taken by anything else stays taken."""
    if not taken:
        return set()
    existing = {r.instance_id: r for r in tx.lock_instances([c.instance_id for _, c in taken])}
    again = [
        c
        for ep, c in taken
        if (old := existing.get(c.instance_id)) is not None
        and old.status.is_terminal
        and old.parent_instance_id == ep.instance_id
    ]
    if not again:
        return set()
    tx.delete_instances([c.instance_id for c in again])
    inserted = tx.insert_instances(again)
    return {c.instance_id for c, ok in zip(again, inserted, strict=True) if ok}


def _child_exists(ep: Episode, child: InstanceRow, now: float) -> NewMessage:
    error = InstanceExists(child.instance_id)
    failure = Failure(type_name(InstanceExists), str(error))
    return NewMessage(
        ep.instance_id,
        ep.row.execution_id,
        h.Event(h.SUB_FAILED, now, {"task_id": child.parent_task_id, "failure": failure.to_json()}),
        now,
    )


def lock_step_names(tx: Tx, episodes: Sequence[Episode]) -> None:
    """Take the shared locks on the names whose standing pauses the commit of
    ``episodes`` reads (their new activities, their new children): before any instance
    lock, as every transaction takes them."""
    activities = sorted({a.name for ep in episodes for a in ep.activities})
    children = sorted({c.name for ep in episodes for c in ep.children})
    if activities:
        tx.lock_names(_control.ACTIVITY, activities, exclusive=False)
    if children:
        tx.lock_names(_control.ORCHESTRATOR, children, exclusive=False)
