"""The replay engine: drives orchestrator code deterministically against its history.

A :class:`Replayer` holds one execution of one instance. Applying history events to it,
oldest first, re-runs the orchestrator code to the same point every time: results are
handed to the code only when the event that carries them is applied, and every durable
call the code makes gets the next task id, which must match the id the history recorded
for it. The worker keeps live replayers in memory, so a step applies only the events
that are new since the last one; a cold worker rebuilds the same state by applying the
whole history (see ``tenuto._runner``).

Generator orchestrators and ``async def`` orchestrators are driven the same way: both
are objects with ``send``/``throw``, and both hand over the :class:`~tenuto.tasks.Task`
they wait on. No asyncio event loop is involved.
"""

from __future__ import annotations

import inspect
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from . import actions
from . import history as h
from ._ids import child_id
from ._json import dumps
from ._locks import CriticalSection, LockTask
from .app import App, Orchestrator
from .context import OrchestrationContext
from .errors import (
    ActivityFailed,
    EntityOperationFailed,
    EventTimeout,
    LockingRulesViolation,
    NonDeterminismError,
    SubOrchestrationFailed,
)
from .retry import RetryPolicy
from .status import Failure
from .tasks import Task, _CompositeTask

_UUID_NAMESPACE = uuid.UUID("6d2f1a8e-0b7c-4a53-9d55-7e0c1a3b9f21")


class _EventWithTimeout(_CompositeTask[Any]):
    """``wait_for_event`` with a timeout: the event or the timer, whichever comes first."""

    __slots__ = ("_event", "_name", "_replayer")

    def __init__(self, replayer: Replayer, name: str, event: Task[Any], timer: Task[Any]) -> None:
        self._replayer, self._name, self._event = replayer, name, event
        super().__init__([event, timer])
        self._settle_initial()

    def _child_done(self, child: Task[Any]) -> None:
        if self.is_done:
            return
        if child is self._event:
            self._complete(child._value)
        else:
            self._replayer._forget_waiter(self._name, self._event)
            self._fail(EventTimeout(f"event {self._name!r} did not arrive before the timeout"))


class Replayer:
    """One execution of one orchestration instance, replayed from its history."""

    def __init__(
        self,
        app: App,
        orchestrator: Orchestrator,
        instance_id: str,
        execution_id: str,
        *,
        on_nondeterminism: str | None = None,
    ) -> None:
        self.app = app
        self.orchestrator = orchestrator
        self.instance_id = instance_id
        self.execution_id = execution_id
        #: Number of history events applied so far.
        self.history_len = 0
        #: How the execution ended, once it has.
        self.outcome: actions.Outcome | None = None
        #: The custom status, as JSON text (``None`` if never set).
        self.custom_status_json: str | None = None
        self.custom_status_changed = False
        self.is_replaying = False
        self.current_time = 0.0
        self.generation = 0
        self.ctx = OrchestrationContext(self)
        self._gen: Any = None
        self._awaiting: Task[Any] | None = None
        self._next_task_id = 0
        self._uuid_counter = 0
        # Actions the code asked for whose history events are not applied yet.
        self._pending: dict[int, actions.DurableCall] = {}
        # Tasks awaiting their result event, by task id.
        self._open: dict[int, Task[Any]] = {}
        self._names: dict[int, str] = {}
        self._waiters: dict[str, deque[Task[Any]]] = {}
        #: The deadline of each waiter given a timeout (shown as pending work).
        self._event_deadlines: dict[Task[Any], float] = {}
        self._buffered: dict[str, deque[Any]] = {}
        self._self_pause: Task[Any] | None = None
        #: The patches the history holds a marker of, and the markers to record.
        self._patches: set[str] = set()
        self._markers: dict[str, actions.PatchMarker] = {}
        self._recorded_ahead = False
        # Sub-orchestration calls that pause on failure, failures a pause holds, and
        # those a resume handed to the code (see failure_to_hold).
        self._pausing_calls: set[int] = set()
        self._held: set[int] = set()
        self._deliverable: set[int] = set()
        #: The mismatch between code and history that stopped this replay, when the
        #: orchestrator's policy is to pause on it (see :meth:`apply`).
        self.mismatch: NonDeterminismError | None = None
        # ``on_nondeterminism``: the policy to follow, whatever the code's (a check).
        self._pause_on_mismatch = (
            on_nondeterminism or orchestrator.on_nondeterminism or app.on_nondeterminism
        ) == "pause"
        #: The entities this execution holds locked (a critical section), if any.
        self.critical: tuple[str, ...] | None = None
        self._locking = False
        #: Whether it ever asked for entity locks (to release them when it ends).
        self.locked_ever = False

    # -- applying events -------------------------------------------------------------

    def apply(self, event: h.Event, *, replaying: bool) -> None:
        """Apply one history event; the code runs as far as the event allows.

        A mismatch between the code and the history fails the execution, or, when the
        orchestrator's policy is to pause on it, stops the replay: :attr:`mismatch` then
        says what it is, and the events applied after it change nothing (the step that
        finds it pauses the instance instead of running on, see :mod:`tenuto._step`)."""
        self.is_replaying = replaying
        self.history_len += 1
        if self.mismatch is not None:
            return
        handler = self._HANDLERS.get(event.type)
        try:
            if handler is not None:
                handler(self, event)
            self._advance()
        except NonDeterminismError as error:
            self._mismatched(error)

    def _mismatched(self, error: NonDeterminismError) -> None:
        if self._pause_on_mismatch:
            self.mismatch = error
        else:
            self._finish(actions.Failed(Failure.from_exception(error)))

    def replay(self, events: Sequence[h.Event]) -> None:
        """Apply stored history events, oldest first.

        For ``ctx.patched()``, the patch markers among them are known before the code
        runs (a marker comes after the event that led the code to the patch), and so is
        whether the code, where it runs, reproduces actions the history recorded after
        that point (then a patch without a marker was not there when they were taken)."""
        self._patches.update(str(e.data["patch"]) for e in events if e.type == h.PATCH_MARKER)
        # The last such action, looked for from the end (where it usually is).
        last = next(
            (i for i in range(len(events) - 1, -1, -1) if _records_an_action(events[i])), -1
        )
        try:
            for i, event in enumerate(events):
                self._recorded_ahead = i < last
                self.apply(event, replaying=True)
        finally:
            self._recorded_ahead = False

    def receive(self, event: h.Event) -> bool:
        """Apply an event that a step adds to the history (see
        :func:`tenuto._step.new_events`); ``False`` if it is moot and stays out of the
        history: a result for a task that is not open (already delivered, or never
        scheduled by this execution), or a message after the execution ended (an event
        raised after ``continue_as_new`` joins what it carries over)."""
        if self.outcome is not None and event.type != h.ORCHESTRATOR_STARTED:
            if isinstance(self.outcome, actions.ContinuedAsNew) and event.type == h.EVENT_RAISED:
                self.add_carry_over(event.data["name"], event.data.get("data"))
            return False
        if event.type in h.TASK_RESULTS and event.data.get("task_id") not in self._open:
            return False
        self.apply(event, replaying=False)
        return True

    def take_actions(self) -> list[actions.Action]:
        """The actions the code asked for that history does not hold yet."""
        return [*self._pending.values(), *self._markers.values()]

    @property
    def started(self) -> bool:
        return self._gen is not None or self.outcome is not None

    # -- event handlers --------------------------------------------------------------

    def _on_execution_started(self, event: h.Event) -> None:
        self.generation = event.data.get("generation", 0)
        try:
            result = self.orchestrator.invoke(self.ctx, event.data.get("input"))
        except BaseException as exc:  # user code: SystemExit too fails only the instance
            self._finish(actions.Failed(Failure.from_exception(exc)))
            return
        if inspect.isgenerator(result) or inspect.iscoroutine(result):
            self._gen = result
            self._run(None, None)
        else:
            self._finish_with_value(result)

    def _on_orchestrator_started(self, event: h.Event) -> None:
        self.current_time = event.ts

    def _on_action_event(self, event: h.Event) -> None:
        task_id = event.data.get("task_id")
        action = self._pending.pop(task_id, None) if task_id is not None else None
        if task_id is None:
            return  # a pause recorded by a client: nothing for the code to match
        expected = actions.BY_EVENT[event.type]
        name = event.data.get("name")
        if (
            action is None
            or not isinstance(action, expected)
            or (name is not None and getattr(action, "name", name) != name)
        ):
            said = expected.described(event.data)
            does = action.describe() if action is not None else "does not do that there"
            mismatch = f"at step {task_id} its history says it {said}, but the code now {does}"
            raise NonDeterminismError(
                f"orchestrator {self.orchestrator.name!r} is not deterministic: {mismatch}. "
                "Code that changes under running instances must keep the order of its "
                "durable calls (see ctx.patched); use ctx.now() and ctx.new_uuid() instead "
                "of the clock or random numbers.",
                mismatch=mismatch,
            )
        if event.type == h.SUB_CREATED and task_id in self._names:
            # The child that exists is the one history names (an older version may have
            # derived its id differently).
            self._names[task_id] = f"{name}\0{event.data.get('instance_id')}"

    def _on_task_completed(self, event: h.Event) -> None:
        task_id = event.data["task_id"]
        task = self._open.pop(task_id, None)
        self._names.pop(task_id, None)
        if task is not None:
            task._complete(event.data.get("result"))

    def _on_task_failed(self, event: h.Event) -> None:
        task_id = event.data["task_id"]
        task = self._open.pop(task_id, None)
        if task is not None:
            failure = Failure.from_json(event.data["failure"])
            name = self._names.pop(task_id)
            task._fail(ActivityFailed(name, failure, event.data.get("attempts", 1)))

    def _on_sub_failed(self, event: h.Event) -> None:
        task_id = event.data["task_id"]
        task = self._open.pop(task_id, None)
        if task is not None:
            failure = Failure.from_json(event.data["failure"])
            name, _, child = self._names.pop(task_id).partition("\0")
            task._fail(SubOrchestrationFailed(name, child, failure))

    def _on_event_raised(self, event: h.Event) -> None:
        name, data = event.data["name"], event.data.get("data")
        waiters = self._waiters.get(name)
        if waiters:
            waiters.popleft()._complete(data)
        else:
            self._buffered.setdefault(name, deque()).append(data)

    def _on_patch_marker(self, event: h.Event) -> None:
        patch = str(event.data["patch"])
        self._patches.add(patch)
        self._markers.pop(patch, None)

    def _on_resumed(self, event: h.Event) -> None:
        self.current_time = event.ts
        if event.data.get("deliver_failure"):
            self._deliverable |= self._held
        self._held.clear()
        if self._self_pause is not None:
            task, self._self_pause = self._self_pause, None
            task._complete(None)

    def _on_suspended(self, event: h.Event) -> None:
        self._on_action_event(event)
        failed = event.data.get("failed")
        if isinstance(failed, dict) and "sub_orchestration" in failed:
            self._held.add(int(failed["task_id"]))
        if event.data.get("task_id") is not None:
            self._self_pause = self._open.pop(event.data["task_id"], None)

    def _on_lock_requested(self, event: h.Event) -> None:
        self._on_action_event(event)
        self.locked_ever = True

    def _on_lock_granted(self, event: h.Event) -> None:
        task = self._open.pop(event.data["task_id"], None)
        self._names.pop(event.data["task_id"], None)
        self._locking = False
        if isinstance(task, LockTask):
            self.critical = task.entities
            task._complete(CriticalSection(self, task.entities))

    def _on_entity_failed(self, event: h.Event) -> None:
        task_id = event.data["task_id"]
        task = self._open.pop(task_id, None)
        if task is not None:
            failure = Failure.from_json(event.data["failure"])
            entity, _, operation = self._names.pop(task_id).partition("\0")
            task._fail(EntityOperationFailed(entity, operation, failure))

    _HANDLERS: dict[str, Callable[[Replayer, h.Event], None]] = {
        h.EXECUTION_STARTED: _on_execution_started,
        h.ORCHESTRATOR_STARTED: _on_orchestrator_started,
        # The event of every action the code takes is matched with the action.
        **dict.fromkeys(actions.BY_EVENT, _on_action_event),
        h.TASK_COMPLETED: _on_task_completed,
        h.TIMER_FIRED: _on_task_completed,
        h.SUB_COMPLETED: _on_task_completed,
        h.TASK_FAILED: _on_task_failed,
        h.SUB_FAILED: _on_sub_failed,
        h.EVENT_RAISED: _on_event_raised,
        h.EXECUTION_SUSPENDED: _on_suspended,  # a self-pause's, or a client's pause
        h.EXECUTION_RESUMED: _on_resumed,
        h.PATCH_MARKER: _on_patch_marker,
        h.ENTITY_LOCK_REQUESTED: _on_lock_requested,
        h.ENTITY_COMPLETED: _on_task_completed,
        h.ENTITY_FAILED: _on_entity_failed,
        h.ENTITY_LOCK_GRANTED: _on_lock_granted,
    }

    # -- driving the code ------------------------------------------------------------

    def _advance(self) -> None:
        task = self._awaiting
        if task is not None and task.is_done:
            self._awaiting = None
            if task.is_failed:
                self._run(None, task._exception)
            else:
                self._run(task._value, None)

    def _run(self, value: Any, exc: BaseException | None) -> None:
        gen = self._gen
        while True:
            try:
                yielded = gen.send(value) if exc is None else gen.throw(exc)
            except StopIteration as stop:
                self._finish_with_value(stop.value)
                return
            except BaseException as error:  # user code may not stop the worker
                self._finish(actions.Failed(Failure.from_exception(error)))
                return
            if self.outcome is not None:  # continue_as_new was called during this step
                gen.close()
                return
            if not isinstance(yielded, Task):
                value, exc = None, self._not_a_task(yielded)
                continue
            if yielded.is_done:
                value, exc = yielded._value, yielded._exception
                continue
            self._awaiting = yielded
            return

    def _not_a_task(self, yielded: object) -> TypeError:
        if inspect.iscoroutine(yielded):
            yielded.close()  # it will never run: no "never awaited" warning on top
        return TypeError(
            f"orchestrator {self.orchestrator.name!r} yielded or awaited "
            f"{type(yielded).__name__} ({yielded!r:.60}); orchestrators may only wait on "
            "tasks from ctx (ctx.call_activity, ctx.create_timer, ...), never on asyncio "
            "or other awaitables"
        )

    def _finish_with_value(self, value: Any) -> None:
        if self.outcome is not None:  # continued as new
            return
        try:
            dumps(value, f"the output of orchestrator {self.orchestrator.name!r}")
        except TypeError as exc:
            self._finish(actions.Failed(Failure.from_exception(exc)))
            return
        self._finish(actions.Completed(value))

    def _finish(self, outcome: actions.Outcome) -> None:
        if self.outcome is None:
            self.outcome = outcome
            # The tasks it started are moot (nothing will wait for them), as is anything
            # it asks for from now on; the events it sent are sent.
            self._pending = {
                task_id: action
                for task_id, action in self._pending.items()
                if isinstance(action, actions.ONE_WAY)
            }
            self._awaiting = None

    # -- operations for OrchestrationContext ------------------------------------------

    def _new_task(
        self,
        action_factory: Callable[[int], actions.DurableCall],
        label: str,
        task: Task[Any] | None = None,
    ) -> Task[Any]:
        task = Task() if task is None else task
        if self.outcome is not None:
            return task  # finished: the call is moot and never completes
        task_id = self._next_task_id
        self._next_task_id += 1
        self._names[task_id] = label
        self._pending[task_id] = action_factory(task_id)
        self._open[task_id] = task
        return task

    def schedule_activity(self, name: str, input: Any, retry: RetryPolicy | None) -> Task[Any]:
        return self._new_task(lambda tid: actions.ScheduleActivity(tid, name, input, retry), name)

    def create_timer(self, fire_at: float) -> Task[Any]:
        return self._new_task(lambda tid: actions.CreateTimer(tid, fire_at), "timer")

    def schedule_sub_orchestration(
        self, name: str, input: Any, instance_id: str | None, pause_on_failure: bool = False
    ) -> Task[Any]:
        def action(tid: int) -> actions.DurableCall:
            child = instance_id or self._child_id(tid)
            self._names[tid] = f"{name}\0{child}"
            if pause_on_failure:
                self._pausing_calls.add(tid)
            return actions.CreateSubOrchestration(tid, name, child, input)

        return self._new_task(action, name)

    def failure_to_hold(self, messages: Sequence[h.Message]) -> dict[str, Any] | None:
        """Of the messages a step is to deliver, the first failure of a sub-orchestration
        whose call pauses on failure (``on_exhausted="pause"``) and that no resume
        handed to the code (``deliver_failure``): the details of the pause it makes
        instead (see :mod:`tenuto._failures`); ``None`` if there is none. A terminated
        child's failure is delivered: terminating it said what to do."""
        for message in messages:
            data, task_id = message.event.data, message.event.data.get("task_id")
            if (
                message.event.type != h.SUB_FAILED
                or message.execution_id != self.execution_id
                or task_id not in self._pausing_calls
                or task_id not in self._open
                or task_id in self._deliverable
            ):
                continue
            failure = Failure.from_json(data["failure"])
            if failure.type == "tenuto.Terminated":
                continue
            name, _, child = self._names.get(task_id, "").partition("\0")
            return {
                "task_id": task_id,
                "sub_orchestration": name,
                "instance_id": child,
                "failure": failure.to_json(),
            }
        return None

    def _child_id(self, task_id: int) -> str:
        return child_id(self.instance_id, self.generation, task_id)

    def send_event(self, instance_id: str, name: str, data: Any) -> None:
        if self.outcome is not None:
            return
        task_id = self._next_task_id
        self._next_task_id += 1
        self._pending[task_id] = actions.SendEvent(task_id, instance_id, name, data)

    def pause_self(self, reason: str | None) -> Task[Any]:
        return self._new_task(lambda tid: actions.PauseSelf(tid, reason), "pause")

    def wait_for_event(self, name: str, timeout_at: float | None) -> Task[Any]:
        event: Task[Any] = Task()
        buffered = self._buffered.get(name)
        if buffered:
            event._complete(buffered.popleft())
            return event
        self._waiters.setdefault(name, deque()).append(event)
        if timeout_at is None:
            return event
        self._event_deadlines[event] = timeout_at
        return _EventWithTimeout(self, name, event, self.create_timer(timeout_at))

    def awaited_events(self) -> list[tuple[str, float | None]]:
        """The events the code waits for now, each with its deadline (``None``: none)."""
        waiting = [(name, task) for name, tasks in self._waiters.items() for task in tasks]
        # Deadlines of waiters no longer waiting (the event came, or the timeout) go.
        live = {task for _, task in waiting}
        for task in [t for t in self._event_deadlines if t not in live]:
            del self._event_deadlines[task]
        return [(name, self._event_deadlines.get(task)) for name, task in waiting]

    def _forget_waiter(self, name: str, task: Task[Any]) -> None:
        waiters = self._waiters.get(name)
        if waiters is not None and task in waiters:
            waiters.remove(task)

    def continue_as_new(self, input: Any, preserve_events: bool) -> None:
        carry: list[tuple[str, Any]] = []
        if preserve_events:
            for name, queue in self._buffered.items():
                carry.extend((name, data) for data in queue)
        self._finish(actions.ContinuedAsNew(input, tuple(carry)))

    def patched(self, patch: str) -> bool:
        if patch in self._patches:
            return True  # the history took the new path, or this run just did
        if self._recorded_ahead:
            return False  # the history was recorded before the change: the old path
        self._patches.add(patch)
        if self.outcome is None:
            self._markers[patch] = actions.PatchMarker(patch)
        return True

    def deprecate_patch(self, patch: str) -> None:
        if patch in self._patches or not self._recorded_ahead or self.mismatch is not None:
            return
        mismatch = (
            f"its history was recorded before change {patch!r} (it took the old path), but "
            f"the code now only has the new one (ctx.deprecate_patch({patch!r}))"
        )
        self._mismatched(
            NonDeterminismError(
                f"orchestrator {self.orchestrator.name!r} is not deterministic: {mismatch}",
                mismatch=mismatch,
            )
        )

    def set_custom_status(self, value: Any) -> None:
        self.custom_status_json = dumps(
            value, f"the custom status of orchestrator {self.orchestrator.name!r}"
        )
        self.custom_status_changed = True

    def new_uuid(self) -> str:
        self._uuid_counter += 1
        name = f"{self.instance_id}/{self.execution_id}/{self._uuid_counter}"
        return str(uuid.uuid5(_UUID_NAMESPACE, name))

    def add_carry_over(self, name: str, data: Any) -> None:
        """Append an event received after ``continue_as_new`` to the carry-over."""
        if isinstance(self.outcome, actions.ContinuedAsNew):
            self.outcome = actions.ContinuedAsNew(
                self.outcome.input,
                (*self.outcome.carry_over, (name, data)),
                self.outcome.version,
            )

    # -- entities --------------------------------------------------------------------

    def call_entity(self, entity: str, operation: str, input: Any) -> Task[Any]:
        if self.critical is not None and entity not in self.critical:
            raise LockingRulesViolation(
                f"entity {entity!r} is called inside a critical section that does not hold "
                f"it (it holds {', '.join(self.critical)}): lock it with the others"
            )
        return self._new_task(
            lambda tid: actions.CallEntity(tid, entity, operation, input),
            f"{entity}\0{operation}",
        )

    def signal_entity(self, entity: str, operation: str, input: Any, at: float | None) -> None:
        self._one_way(lambda tid: actions.SignalEntity(tid, entity, operation, input, at))

    def lock_entities(self, entities: tuple[str, ...]) -> Task[Any]:
        if self.critical is not None or self._locking:
            raise LockingRulesViolation(
                "lock_entities inside a critical section: lock every entity you need at once"
            )
        self._locking = True
        task = LockTask(entities)
        return self._new_task(lambda tid: actions.LockEntities(tid, entities), "lock", task)

    def unlock_entities(self, entities: tuple[str, ...]) -> None:
        if self.critical == entities:
            self.critical = None
            self._one_way(lambda tid: actions.UnlockEntities(tid, entities))

    def _one_way(self, action_factory: Callable[[int], actions.DurableCall]) -> None:
        if self.outcome is not None:
            return
        task_id = self._next_task_id
        self._next_task_id += 1
        self._pending[task_id] = action_factory(task_id)


def _records_an_action(event: h.Event) -> bool:
    """Whether a history event records something the code did (a durable call, a patch
    marker), rather than something that happened to it."""
    if event.type == h.PATCH_MARKER:
        return True
    return event.type in actions.BY_EVENT and event.data.get("task_id") is not None
