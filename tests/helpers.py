"""Helpers shared by the tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.005, what: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


class Gate:
    """Lets a test hold activities until it opens them, and see who is waiting."""

    def __init__(self) -> None:
        import threading

        self._cond = threading.Condition()
        self._open: set[object] = set()
        self.waiting: list[object] = []

    def wait(self, key: object, timeout: float = 30.0) -> None:
        with self._cond:
            self.waiting.append(key)
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: key in self._open, timeout):
                raise TimeoutError(f"gate {key!r} was never opened")
            self.waiting.remove(key)

    def reset(self) -> None:
        """Close every gate again (between tests that reuse keys)."""
        with self._cond:
            self._open.clear()

    def wait_briefly(self, key: object) -> bool:
        """Whether ``key`` opens within a moment (for waiting from async code)."""
        with self._cond:
            return self._cond.wait_for(lambda: key in self._open, 0.05)

    def open(self, key: object) -> None:
        with self._cond:
            self._open.add(key)
            self._cond.notify_all()

    def is_waiting(self, key: object) -> bool:
        with self._cond:
            return key in self.waiting


def settle(worker: object, cycles: int = 5) -> None:
    """Let ``worker`` look for work ``cycles`` more times (each after a wake-up), so a
    test can assert that something did *not* happen although it had every chance."""
    for _ in range(cycles):
        before = worker.polls  # type: ignore[attr-defined]
        worker._listener.kick()  # type: ignore[attr-defined]
        wait_for(lambda b=before: worker.polls > b, what="a worker cycle")  # type: ignore[attr-defined]
