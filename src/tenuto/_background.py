"""A worker's background loops (retention, schedule firing): a daemon thread that runs a
tick every ``interval`` seconds, again after ``gap`` seconds while a tick says more is
waiting, logs what fails (an unreachable database only as an outage), and stops on
request."""

from __future__ import annotations

import abc
import logging
import threading

from .store.base import Store


class BackgroundLoop(abc.ABC):
    """Runs :meth:`tick` in a daemon thread until :meth:`stop`."""

    #: Its thread's name (a prefix, followed by the worker's name).
    thread_name = "tenuto-background"
    #: What it does, for its log lines.
    what = "a background task"

    def __init__(
        self, store: Store, worker: str, log: logging.Logger, *, interval: float, gap: float
    ) -> None:
        self.store = store
        self.worker = worker
        self.interval = interval
        self.gap = gap
        self._log = log
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    def tick(self) -> bool:
        """Do one round of work; whether more is waiting (then the next comes sooner)."""

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"{self.thread_name}-{self.worker}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    @property
    def halted(self) -> bool:
        return self._halt.is_set()

    def _loop(self) -> None:
        while not self._halt.is_set():
            try:
                more = self.tick()
            except Exception as exc:
                if self.store.outage(exc) is None:
                    self._log.exception("%s failed; trying again later", self.what)
                more = False
            self._halt.wait(self.gap if more else self.interval)
