"""In-process wake-ups: a commit in one thread wakes workers and waiters in the others.

Stores of the same database opened in one process share a :class:`Hub`, so a client
that starts an instance wakes an in-process worker at once instead of at its next poll.
Other processes are reached by the backend's own means (polling ``PRAGMA data_version``
on SQLite, LISTEN/NOTIFY on PostgreSQL).

Wake-ups have topics, so that each listener is woken only by what it waits for:
:data:`WORK` (something became due: workers) and :data:`DONE` (an instance finished:
``client.wait``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

WORK = "work"
DONE = "done"
#: Operations for entities were queued, or entities unlocked or resumed (entity loops).
ENTITIES = "entities"
TOPICS = frozenset({WORK, DONE, ENTITIES})


class Hub:
    """Wakes the listeners of one database that subscribe to a topic."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[threading.Event, frozenset[str]] = {}

    def listen(self, topics: Iterable[str]) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._listeners[event] = frozenset(topics)
        return event

    def unlisten(self, event: threading.Event) -> None:
        with self._lock:
            self._listeners.pop(event, None)

    def pulse(self, topics: Iterable[str] = TOPICS, exclude: threading.Event | None = None) -> None:
        wanted = frozenset(topics)
        with self._lock:
            listeners = [e for e, t in self._listeners.items() if t & wanted and e is not exclude]
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
