"""Tasks: what ``ctx`` operations return, and what orchestrator code yields or awaits.

A task is completed only by the replay engine, while it applies a history event, so an
orchestration sees results in exactly the order its history records them. The same task
object works with both authoring styles::

    result = yield ctx.call_activity(f, x)     # generator orchestrator
    result = await ctx.call_activity(f, x)     # async orchestrator
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_PENDING, _DONE, _FAILED = 0, 1, 2


class Task(Generic[T]):
    """The eventual result of a durable operation."""

    __slots__ = ("_exception", "_parents", "_state", "_value")

    def __init__(self) -> None:
        self._state = _PENDING
        self._value: Any = None
        self._exception: BaseException | None = None
        self._parents: list[_CompositeTask[Any]] = []

    @property
    def is_done(self) -> bool:
        """True once the task has completed or failed."""
        return self._state != _PENDING

    @property
    def is_failed(self) -> bool:
        """True if the task failed."""
        return self._state == _FAILED

    def result(self) -> T:
        """The task's value; raises its exception if it failed, ``RuntimeError`` if pending."""
        if self._state == _DONE:
            return self._value  # type: ignore[no-any-return]
        if self._state == _FAILED:
            assert self._exception is not None
            raise self._exception
        raise RuntimeError("the task has not completed yet")

    @property
    def exception(self) -> BaseException | None:
        """The exception the task failed with, or ``None``."""
        return self._exception

    def _complete(self, value: Any) -> None:
        if self._state != _PENDING:
            return
        self._state, self._value = _DONE, value
        self._notify()

    def _fail(self, exc: BaseException) -> None:
        if self._state != _PENDING:
            return
        self._state, self._exception = _FAILED, exc
        self._notify()

    def _notify(self) -> None:
        for parent in self._parents:
            parent._child_done(self)

    def __await__(self) -> Generator[Task[T], Any, T]:
        # The replay engine receives this task from the coroutine, and sends the
        # result back in (or throws the failure) once it is done.
        return (yield self)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        state = {_PENDING: "pending", _DONE: "done", _FAILED: "failed"}[self._state]
        return f"<{type(self).__name__} {state}>"


class _CompositeTask(Task[T]):
    __slots__ = ("_children",)

    def __init__(self, children: Sequence[Task[Any]]) -> None:
        super().__init__()
        self._children = list(children)
        for child in self._children:
            if not isinstance(child, Task):
                raise TypeError(
                    f"when_all/when_any take tasks from ctx, not {type(child).__name__}"
                )
            child._parents.append(self)

    def _child_done(self, child: Task[Any]) -> None:
        raise NotImplementedError

    def _settle_initial(self) -> None:
        for child in self._children:
            if child.is_done:
                self._child_done(child)
                if self.is_done:
                    return


class WhenAll(_CompositeTask[list[Any]]):
    """Completes with the list of results once every task has completed.

    Fails as soon as one task fails, with that task's exception.
    """

    __slots__ = ("_remaining",)

    def __init__(self, children: Sequence[Task[Any]]) -> None:
        super().__init__(children)
        self._remaining = len(self._children)
        if not self._children:
            self._complete([])
        else:
            self._settle_initial()

    def _child_done(self, child: Task[Any]) -> None:
        if self.is_done:
            return
        if child.is_failed:
            assert child.exception is not None
            self._fail(child.exception)
            return
        self._remaining -= 1
        if self._remaining == 0:
            self._complete([c._value for c in self._children])

    def _settle_initial(self) -> None:
        # Count every child that is already done; a failure among them wins.
        for child in self._children:
            if child.is_done:
                self._child_done(child)


class WhenAny(_CompositeTask[Task[Any]]):
    """Completes with the first task (not its result) that completes or fails."""

    __slots__ = ()

    def __init__(self, children: Sequence[Task[Any]]) -> None:
        super().__init__(children)
        if not self._children:
            raise ValueError("when_any needs at least one task")
        self._settle_initial()

    def _child_done(self, child: Task[Any]) -> None:
        self._complete(child)
