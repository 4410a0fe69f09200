"""In-process wake-ups: a commit in one thread wakes workers and waiters in the others.

Stores of the same database opened in one process share a :class:`Hub`, so a client
that starts an instance wakes an in-process worker at once instead of at its next poll.
Other processes are reached by the backend's own means (polling ``PRAGMA data_version``
on SQLite, LISTEN/NOTIFY on PostgreSQL).
"""

from __future__ import annotations

import threading


class Hub:
    """Wakes every listener of one database."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: set[threading.Event] = set()

    def listen(self) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._listeners.add(event)
        return event

    def unlisten(self, event: threading.Event) -> None:
        with self._lock:
            self._listeners.discard(event)

    def pulse(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for event in listeners:
            event.set()


_hubs: dict[str, Hub] = {}
_hubs_lock = threading.Lock()


def hub_for(key: str) -> Hub:
    """The hub shared by every store of the database identified by ``key``."""
    with _hubs_lock:
        hub = _hubs.get(key)
        if hub is None:
            hub = _hubs[key] = Hub()
        return hub
