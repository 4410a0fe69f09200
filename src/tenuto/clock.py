"""Where the engine reads the time. Tests and chaos runs substitute their own clock."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A source of wall-clock time in epoch seconds (UTC)."""

    def now(self) -> float: ...


class SystemClock:
    """The machine's clock, to the microsecond.

    Times are rounded to whole microseconds so that they survive the round trip through
    ``datetime`` exactly: a ``created_at`` read back from a status is a valid, exact,
    bound for a query.
    """

    def now(self) -> float:
        return round(time.time(), 6)


SYSTEM_CLOCK: Clock = SystemClock()
