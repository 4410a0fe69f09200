"""Where the engine reads the time. Tests and chaos runs substitute their own clock."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A source of wall-clock time in epoch seconds (UTC)."""

    def now(self) -> float: ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> float:
        return time.time()


SYSTEM_CLOCK: Clock = SystemClock()
