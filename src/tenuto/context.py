"""``OrchestrationContext``: the only API orchestrator code sees.

Orchestrator code is replayed from its history, possibly many times and on other
machines, so it must be deterministic: it reaches the outside world only through ``ctx``
(activities, timers, events, sub-orchestrations), reads the time with ``ctx.now()``, and
makes identifiers with ``ctx.new_uuid()``. Each durable call returns a
:class:`~tenuto.tasks.Task` to ``yield`` (generator orchestrators) or ``await``
(``async def`` orchestrators).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import _failures
from ._ids import check_instance_id
from ._json import dumps, is_text
from ._locks import LockTask
from .app import check_name, check_policy, name_of
from .entities import EntityId, check_operation
from .errors import InvalidType, ValidationError
from .retry import EXHAUSTED_POLICIES, RetryPolicy
from .status import to_timestamp
from .tasks import Task, WhenAll, WhenAny

if TYPE_CHECKING:
    from .replay import Replayer


class OrchestrationContext:
    """The handle an orchestrator function receives as its first argument."""

    __slots__ = ("_r",)

    def __init__(self, replayer: Replayer) -> None:
        self._r = replayer

    @property
    def instance_id(self) -> str:
        """The id of the running instance."""
        return self._r.instance_id

    @property
    def is_replaying(self) -> bool:
        """True while the code re-runs steps it already took (to skip duplicate logging)."""
        return self._r.is_replaying

    def now(self) -> datetime:
        """The current time, replay-safe: the time at which this step first ran."""
        return datetime.fromtimestamp(self._r.current_time, UTC)

    def new_uuid(self) -> str:
        """A new UUID string, the same on every replay of this step."""
        return self._r.new_uuid()

    def call_activity(
        self,
        activity: str | Callable[..., Any],
        input: Any = None,
        *,
        retry: RetryPolicy | None = None,
    ) -> Task[Any]:
        """Schedule an activity with one JSON input; the task gives its return value.

        If the activity raises on its last attempt, waiting on the task raises
        :class:`~tenuto.ActivityFailed`. ``retry`` overrides the activity's default policy.
        """
        with _plain_refusals():
            registered = self._r.app.get_activity(name_of(activity))
        dumps(input, f"the input of activity {registered.name!r}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a tenuto.RetryPolicy, not {type(retry).__name__}")
        policy = _failures.policy_for(self._r.app, retry or registered.retry)
        return self._r.schedule_activity(registered.name, input, policy)

    def call_sub_orchestrator(
        self,
        orchestrator: str | Callable[..., Any],
        input: Any = None,
        *,
        instance_id: str | None = None,
        on_exhausted: str | None = None,
    ) -> Task[Any]:
        """Start a child orchestration and wait for its output.

        The child gets the id ``instance_id``, which follows the rules of every instance
        id (a ``ValueError`` here otherwise), or one derived from this instance's id,
        ``<id>:<n>``, shortened with a hash when that would pass 256 characters (see
        "JSON values and instance ids" in the concepts). If the child fails or is
        terminated, waiting raises :class:`~tenuto.SubOrchestrationFailed`. Pausing this
        instance pauses the child.

        ``on_exhausted="pause"`` (or the app's ``on_exhausted``, when not given): if the
        child fails, this instance pauses instead (``pause.source == "failure"``);
        resuming it rewinds the child (what failed in it runs again), and
        ``resume(..., deliver_failure=True)`` raises the failure here instead.
        """
        policy = check_policy(on_exhausted, EXHAUSTED_POLICIES, "on_exhausted")
        with _plain_refusals():
            registered = self._r.app.get_orchestrator(name_of(orchestrator))
        dumps(input, f"the input of sub-orchestrator {registered.name!r}")
        if instance_id is not None:
            with _plain_refusals():
                check_instance_id(instance_id, "sub-orchestration instance id")
        pauses = (policy or self._r.app.on_exhausted) == "pause"
        return self._r.schedule_sub_orchestration(registered.name, input, instance_id, pauses)

    def create_timer(self, fire_at: datetime | timedelta) -> Task[None]:
        """A durable timer that fires at ``fire_at`` (a datetime, or a delay from ``now()``).

        A timer that comes due while the instance is paused fires right after resume.
        """
        return self._r.create_timer(self._deadline(fire_at))

    def wait_for_event(
        self, name: str, timeout: datetime | timedelta | float | None = None
    ) -> Task[Any]:
        """Wait for an external event raised with ``client.raise_event(id, name, data)``.

        Events that arrive before anyone waits are kept, in order, for the next wait
        with that name. With ``timeout`` (a delay, seconds, or a deadline), waiting raises
        :class:`~tenuto.EventTimeout` if the event has not arrived by then.
        """
        if not isinstance(name, str) or not name:
            raise ValueError("an event name must be a non-empty string")
        deadline = None
        if timeout is not None:
            if isinstance(timeout, int | float):
                timeout = timedelta(seconds=timeout)
            deadline = self._deadline(timeout)
        return self._r.wait_for_event(name, deadline)

    def send_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Raise an event on another instance (fire and forget, recorded in history).

        ``instance_id`` must follow the rules of instance ids (a ``ValueError`` here
        otherwise). An event for an instance that does not exist or has finished is
        dropped.
        """
        with _plain_refusals():
            check_instance_id(instance_id)
            check_name(name, "event name")
        dumps(data, f"the data of event {name!r}")
        self._r.send_event(instance_id, name, data)

    def when_all(self, tasks: Sequence[Task[Any]]) -> Task[list[Any]]:
        """A task that completes with all results, in order (fails on the first failure)."""
        return WhenAll(tasks)

    def when_any(self, tasks: Sequence[Task[Any]]) -> Task[Task[Any]]:
        """A task that completes with the first of ``tasks`` to finish (the task itself)."""
        return WhenAny(tasks)

    def continue_as_new(
        self, input: Any = None, *, preserve_unprocessed_events: bool = True
    ) -> None:
        """Restart this instance with ``input`` and an empty history, once the code returns.

        Use it for eternal orchestrations (monitors, loops) so history stays short.
        Events received but not yet waited on are carried over unless told otherwise.
        """
        dumps(input, "the input of continue_as_new")
        self._r.continue_as_new(input, preserve_unprocessed_events)

    def set_custom_status(self, value: Any) -> None:
        """Publish a JSON value (progress, say) that clients read in ``status().custom_status``."""
        self._r.set_custom_status(value)

    def pause(self, reason: str | None = None) -> Task[None]:
        """Pause this instance; the task completes when someone resumes it.

        The pause takes effect when the current step ends: ``yield``/``await`` it at once.
        """
        if reason is not None and not isinstance(reason, str):
            raise TypeError("a pause reason must be a string")
        if reason is not None and not is_text(reason):
            raise ValueError("a pause reason must not contain lone surrogates")
        return self._r.pause_self(reason)

    def patched(self, change_id: str) -> bool:
        """Whether to take the new path of a change made under running instances.

        ``True`` when the code runs past this point for the first time (a marker is
        recorded in the history), or replays a history that has the marker; ``False``
        when it replays a history recorded before the change. Old instances keep the old
        path, new ones take the new one::

            if ctx.patched("fraud-check"):
                yield ctx.call_activity(check_fraud, order)
            yield ctx.call_activity(reserve, order)

        Once no instance lacks the marker (``tenuto replay-check`` tells), replace the
        test with :meth:`deprecate_patch` and remove the old path.
        """
        return self._r.patched(self._change_id(change_id))

    def deprecate_patch(self, change_id: str) -> None:
        """Say that the old path of a change is gone: the code only has the new one.

        A history recorded before the change (without the marker of
        :meth:`patched`) no longer matches the code: its instance pauses (or fails,
        under ``on_nondeterminism="fail"``), and ``tenuto replay-check`` names it.
        Once no running instance was started before this code, remove the call.
        """
        self._r.deprecate_patch(self._change_id(change_id))

    @staticmethod
    def _change_id(change_id: str) -> str:
        with _plain_refusals():
            return check_name(change_id, "change id")

    def call_entity(
        self, entity_id: EntityId | str, operation: str, input: Any = None
    ) -> Task[Any]:
        """Call an operation of an entity (``EntityId`` or ``"@name@key"``); the task
        gives its result, or raises :class:`~tenuto.EntityOperationFailed` if it raised.
        Inside a critical section, only the entities it holds may be called."""
        with _plain_refusals():
            target = str(EntityId.of(entity_id))
            check_operation(operation)
        dumps(input, f"the input of entity operation {operation!r}")
        return self._r.call_entity(target, operation, input)

    def signal_entity(
        self,
        entity_id: EntityId | str,
        operation: str,
        input: Any = None,
        *,
        signal_time: datetime | timedelta | None = None,
    ) -> None:
        """Send an entity a one-way operation, now or at ``signal_time`` (a datetime,
        or a delay from ``now()``)."""
        with _plain_refusals():
            target = str(EntityId.of(entity_id))
            check_operation(operation)
        dumps(input, f"the input of entity operation {operation!r}")
        at = None if signal_time is None else self._deadline(signal_time)
        self._r.signal_entity(target, operation, input, at)

    def lock_entities(self, *entity_ids: EntityId | str) -> LockTask:
        """Lock entities for a critical section: ``with (yield ctx.lock_entities(a, b)):``
        or ``async with ctx.lock_entities(a, b):``. While held, operations from anyone
        else wait; the block's end (or the orchestration's, however it ends) unlocks."""
        if not entity_ids:
            raise ValueError("lock_entities needs at least one entity")
        with _plain_refusals():
            targets = tuple(sorted({str(EntityId.of(e)) for e in entity_ids}))
        task = self._r.lock_entities(targets)
        assert isinstance(task, LockTask)
        return task

    def _deadline(self, when: datetime | timedelta) -> float:
        if isinstance(when, timedelta):
            return self._r.current_time + when.total_seconds()
        if isinstance(when, datetime):
            return to_timestamp(when)  # naive datetimes are UTC, as everywhere in tenuto
        raise TypeError(f"expected a datetime or a timedelta, not {type(when).__name__}")


@contextmanager
def _plain_refusals() -> Iterator[None]:
    """Refusals of the id and name checks as orchestrator code has always seen them: a
    plain ``ValueError`` or ``TypeError`` (not a :class:`~tenuto.ValidationError`, which
    says a caller of a client or a server gave a bad value). An uncaught one fails the
    instance with its type recorded by name, which retry policies and Durable Task
    clients match on."""
    try:
        yield
    except InvalidType as exc:
        raise TypeError(str(exc)) from None
    except ValidationError as exc:
        raise ValueError(str(exc)) from None
