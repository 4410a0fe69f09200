"""The worker's schedule firer: a background thread that fires due schedules.

Every worker runs one; they share the work through the store (see
:mod:`tenuto._schedules`: a fire time is handled by exactly one of them, in the
transaction that starts its run). Fire times are handled within ``interval`` seconds of
coming due.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from . import _schedules
from .store.base import Store

log = logging.getLogger("tenuto.schedules")


class ScheduleFirer:
    """Fires due schedules every ``interval`` seconds, in its own short transactions."""

    def __init__(
        self, store: Store, worker: str, *, clock: Callable[[], float], interval: float = 0.1
    ) -> None:
        self.store = store
        self.worker = worker
        self.clock = clock
        self.interval = interval
        #: Runs this firer started.
        self.fired = 0
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"tenuto-schedules-{self.worker}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._halt.is_set():
            try:
                self.run_once()
            except Exception as exc:
                if self.store.outage(exc) is None:
                    log.exception("schedules: firing failed; trying again shortly")
            self._halt.wait(self.interval)

    def run_once(self) -> list[str]:
        """Fire what is due now; returns the ids of the runs started."""
        started = self.store.run(lambda tx: _schedules.fire_due(tx, self.clock()))
        self.fired += len(started)
        return started
