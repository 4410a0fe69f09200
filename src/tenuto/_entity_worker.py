"""The worker's entity loop: leases entities with operations due, runs their batches,
writes them (see :mod:`tenuto._entities`).

It runs in a thread of its own beside the worker's cycle of steps and activities, with
its own transactions: one that claims entities (and resumes those whose scheduled resume
has come), one that writes the batches it ran.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time

from . import _entities
from ._wakeups import ENTITIES
from .app import App
from .clock import Clock
from .store.base import Store, Tx
from .store.entity_base import EntityOpRow, EntityRow

log = logging.getLogger("tenuto.worker")


class EntityRunner:
    """Runs the entities of ``app`` against ``store``, ``entities`` at a time, up to
    ``operations`` operations per entity and batch."""

    def __init__(
        self,
        app: App,
        store: Store,
        clock: Clock,
        worker_id: str,
        *,
        lease_seconds: float,
        poll_interval: float,
        entities: int = 100,
        operations: int = 200,
    ) -> None:
        self.app = app
        self.store = store
        self.clock = clock
        self.id = worker_id
        self.names = app.entity_names
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.entities = entities
        self.operations = operations
        #: Batches written, and operations applied in them.
        self.batches = 0
        self.applied = 0
        self._leases = itertools.count(1)
        self._stopping = threading.Event()
        self._listener = store.listener([ENTITIES])
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # Clients refuse signals to entity names no worker has registered (typos).
        self.store.run(lambda tx: tx.register_entity_names(self.names, self.clock.now()))
        self._thread = threading.Thread(
            target=self._main, name=f"tenuto-entities-{self.id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._listener.kick()
        if self._thread is not None:
            self._thread.join(timeout)
        self._listener.close()

    def _main(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            try:
                busy = self.cycle()
            except Exception as exc:
                backoff = min(max(backoff * 2, 0.05), 5.0)
                if self.store.outage(exc) is None:
                    log.exception("worker %s: entity cycle failed; retrying", self.id)
                self._listener.wait(backoff)
                continue
            backoff = 0.0
            if not busy:
                self._listener.wait(self._idle_timeout())

    def cycle(self) -> bool:
        """Claim, run and write one round of batches; whether there was anything."""
        lease = f"{self.id}:e{next(self._leases)}"

        def claim(tx: Tx) -> tuple[list[EntityRow], dict[str, list[EntityOpRow]], int]:
            now = self.clock.now()
            resumed = _entities.due_resumes(tx, now, self.entities)
            rows = tx.claim_entities(
                self.names, now, self.entities, lease, now + self.lease_seconds
            )
            ops = tx.entity_ops([r.entity_id for r in rows], now, self.operations) if rows else {}
            return rows, ops, resumed

        # A claim need not reach disk before it returns (durable=False): a claim lost in a
        # database crash is only a lease lost, and the batch is claimed again.
        with self.store.transaction(origin=self._listener, durable=False) as tx:
            rows, ops, resumed = claim(tx)
        if not rows:
            return resumed > 0
        now = self.clock.now()
        # The whole round must be written well before the leases run out: the batches
        # stop taking operations at half the lease (the rest wait for the next round).
        # An operation is expected to be short, as orchestrator code is.
        deadline = time.monotonic() + self.lease_seconds / 2
        batches = [
            _entities.run_batch(self.app, row, ops[row.entity_id], now, deadline) for row in rows
        ]
        written = self.store.run(lambda tx: _entities.write_batches(tx, batches, self.clock.now()))
        self.batches += written
        self.applied += sum(len(b.applied) for b in batches)
        return True

    def _idle_timeout(self) -> float:
        try:
            at = self.store.read(lambda r: r.next_entity_work_at(self.names))
        except Exception:
            return self.poll_interval
        if at is None:
            return self.poll_interval
        return min(self.poll_interval, max(at - self.clock.now(), 0.0))
