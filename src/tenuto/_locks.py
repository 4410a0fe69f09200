"""Critical sections: what ``ctx.lock_entities`` returns, in both authoring styles.

::

    with (yield ctx.lock_entities(a, b)):          # generator orchestrators
        ...
    async with ctx.lock_entities(a, b):            # async orchestrators
        ...

The task completes once every entity is locked (in sorted order, so two sections
cannot deadlock); leaving the block unlocks them, whether it ends normally or raises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .tasks import Task

if TYPE_CHECKING:
    from .replay import Replayer


class CriticalSection:
    """Entities held by this orchestration; only it may call them until released."""

    __slots__ = ("_released", "_replayer", "entities")

    def __init__(self, replayer: Replayer, entities: tuple[str, ...]) -> None:
        self._replayer = replayer
        self.entities = entities
        self._released = False

    def release(self) -> None:
        """Unlock the entities (at most once; leaving the ``with`` block does it)."""
        if not self._released:
            self._released = True
            self._replayer.unlock_entities(self.entities)

    def __enter__(self) -> CriticalSection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class LockTask(Task[CriticalSection]):
    """The task of a lock request; also an async context manager."""

    __slots__ = ("entities",)

    def __init__(self, entities: tuple[str, ...]) -> None:
        super().__init__()
        self.entities = entities

    async def __aenter__(self) -> CriticalSection:
        return await self

    async def __aexit__(self, *exc: Any) -> None:
        if self.is_done and not self.is_failed:
            self.result().release()
