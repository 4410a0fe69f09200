"""The drainer of the tracking outbox: every tracking record, whoever made it, emitted
once to the tracking log, the Prometheus counters and OpenTelemetry.

Each state change writes its tracking records to the store's ``outbox`` table in its
own transaction (:func:`tenuto._control.track_each`, and the steps' commits). One
:class:`Drainer` per deployment, the one that holds its lease, drains it:

1. in one transaction, it renews its lease and numbers the oldest unnumbered records
   (``seq``, the order of emission);
2. it emits them: to the ``tenuto`` logger (:func:`tenuto.tracking.emit`) and, when
   tracing is on, as spans;
3. in one transaction, it records how far it got, adds the records to the emitted
   counts (the ``tenuto_events_total`` and ``tenuto_pauses_total`` metrics, which every
   process reads from the store) and trims what is old enough.

At least once: a drainer that dies between 2 and 3, or whose step 3 fails (the database
went away), has emitted records that it did not record as emitted; whoever drains next
emits that batch (at most ``batch`` records, with the same ``seq`` numbers) again.
Nothing else repeats, and nothing is lost: a record is deleted only once emitted. The
counts are exact (added with step 3).

``tenuto serve`` and ``tenuto worker`` run one each; the others wait, and one of them
takes over within ``lease_seconds`` of the holder's death.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence

from . import tracing, tracking
from .store.base import Store, Tx
from .store.outbox import DrainState, TrackingRecord

log = logging.getLogger("tenuto.outbox")


class Drainer:
    """Drains the tracking outbox of ``store`` in a thread while it holds the lease.

    ``lease_seconds``: how long the lease outlives a holder that stops renewing it;
    ``interval``: how often the outbox is looked at when idle; ``batch``: records per
    transaction; emitted records are kept ``keep_seconds`` (and at most
    ``keep_records`` of them) for ``tenuto events`` and ``GET /api/events``."""

    def __init__(
        self,
        store: Store,
        *,
        lease_seconds: float = 30.0,
        interval: float = 0.2,
        batch: int = 500,
        keep_seconds: float = 3600.0,
        keep_records: int = 100_000,
    ) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self.interval = interval
        self.batch = batch
        self.keep_seconds = keep_seconds
        self.keep_records = keep_records
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._logged_locally = True

    def start(self) -> None:
        """Drain in a background thread until :meth:`stop`. This process then logs
        every change as drained, its own included, and no longer as it commits them."""
        self._logged_locally = tracking.log_locally
        tracking.log_locally = False
        self._thread = threading.Thread(target=self._run, name="tenuto-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop draining and give the lease up (another process takes it at once); this
        process then logs its own changes again."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            tracking.log_locally = self._logged_locally
        try:
            self.store.run(lambda tx: tx.release_drain(self.holder))
        except Exception as exc:  # the lease then simply expires
            log.warning("could not release the outbox lease: %s", exc)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                emitted = self.drain_once() if self._due() else 0
                if failures:
                    log.warning("draining the tracking outbox works again")
                failures = 0
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("draining the tracking outbox failed: %s; retrying", exc)
                backoff = self.interval * 2 ** min(failures, 10)
                self._stop.wait(min(backoff, self.lease_seconds / 3))
                continue
            if emitted < self.batch:
                self._stop.wait(self.interval)

    def _due(self) -> bool:
        """Whether there is anything for this process to do: only a read when idle or
        when another process holds the lease."""
        state: DrainState = self.store.read(lambda r: r.drain_state(count=False))
        now = time.time()
        if state.holder not in (None, self.holder) and (state.lease_until or 0) >= now:
            return False
        work = state.pending > 0 or state.emitted < state.sequenced
        renew = (
            state.holder != self.holder or (state.lease_until or 0) - now < self.lease_seconds / 2
        )
        return work or renew

    def drain_once(self) -> int:
        """Take or renew the lease and emit one batch; returns how many records were
        emitted (0 if another process holds the lease)."""
        now = time.time()

        def take(tx: Tx) -> list[TrackingRecord] | None:
            state = tx.lease_drain(self.holder, now, now + self.lease_seconds)
            if state is None:
                return None
            if state.emitted < state.sequenced:
                # Numbered by a drainer that died before saying it emitted them.
                return tx.tracking_after(state.emitted, self.batch)
            return tx.sequence_tracking(state.sequenced, self.batch)

        records = self.store.run(take)
        if not records:
            return 0
        self._emit(records)
        last = records[-1].seq
        assert last is not None
        counts = _counts(records)
        acked = self.store.run(
            lambda tx: tx.ack_tracking(
                self.holder,
                last,
                counts,
                trim_to=last - self.keep_records,
                trim_before=time.time() - self.keep_seconds,
            )
        )
        if not acked:
            log.warning("lost the tracking outbox lease; another process emits from now on")
        return len(records)

    def _emit(self, records: Sequence[TrackingRecord]) -> None:
        for r in records:
            assert r.seq is not None
            tracking.emit(r.event, r.instance_id, r.fields, r.seq, r.ts)
            if tracing.enabled():
                tracing.tracked(r.event, r.instance_id, r.fields, r.seq, r.ts)


def _counts(records: Sequence[TrackingRecord]) -> Counter[tuple[str, str]]:
    """Records per ``(event, source)`` (``""``: without a pause source)."""
    return Counter((r.event, str(r.fields.get("source") or "")) for r in records)
