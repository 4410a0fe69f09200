"""The worker's schedule firer: a background thread that fires due schedules.

Every worker runs one; they share the work through the store (see
:mod:`tenuto._schedules`: a fire time is handled by exactly one of them, in the
transaction that starts its run). Fire times are handled within ``interval`` seconds of
coming due.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from . import _schedules
from ._background import BackgroundLoop
from .store.base import Store

log = logging.getLogger("tenuto.schedules")


class ScheduleFirer(BackgroundLoop):
    """Fires due schedules every ``interval`` seconds, in its own short transactions."""

    thread_name = "tenuto-schedules"
    what = "schedules: firing"

    def __init__(
        self, store: Store, worker: str, *, clock: Callable[[], float], interval: float = 0.1
    ) -> None:
        super().__init__(store, worker, log, interval=interval, gap=interval)
        self.clock = clock
        #: Runs this firer started.
        self.fired = 0

    def tick(self) -> bool:
        self.run_once()
        return False

    def run_once(self) -> list[str]:
        """Fire what is due now; returns the ids of the runs started."""
        now = self.clock()
        # A read first: most ticks find nothing, and need no write transaction (on
        # SQLite, the write lock) for it.
        if not self.store.read(lambda r: r.schedule_work(now)):
            return []
        started = self.store.run(lambda tx: _schedules.fire_due(tx, now))
        self.fired += len(started)
        return started
