"""Entity work items for Durable Task SDK workers (``EntityBatchRequest``), beside the
orchestration steps and activities of :mod:`tenuto.grpc.dispatch`.

A stream whose work-item filters name entities gets batches of their operations: the
entity is leased as a tenuto worker leases it (:mod:`tenuto._entities`), the calls and
signals at the head of its queue are sent as one ``EntityBatchRequest``, and
``CompleteEntityTask`` writes the outcome in one transaction (state, results to the
callers, signals, orchestrations started) if the lease is still the one the batch was
sent under. Lock and unlock requests at the head of a queue are applied here, without a
round trip: they run no user code.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import durabletask.internal.orchestrator_service_pb2 as pb
from google.protobuf import wrappers_pb2

from .. import _entities
from .. import history as h
from .._json import dumps, loads
from ..app import App
from ..clock import Clock
from ..entities import EntityId, OrchestrationStarted
from ..errors import ValidationError
from ..store.base import NewMessage, Store, Tx
from ..store.entity_base import EntityOpRow, EntityRow, NewEntityOp
from . import convert

log = logging.getLogger("tenuto.grpc")

#: Operations sent in one batch, at most.
OPERATIONS = 100
_USER_OPS = (_entities.CALL, _entities.SIGNAL)


@dataclass
class _Sent:
    """A batch sent to an SDK worker, waiting for its ``CompleteEntityTask``."""

    row: EntityRow
    ops: list[EntityOpRow]


class SdkEntities:
    """The entity batches leased for SDK workers."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._sent: dict[str, _Sent] = {}

    def claim(
        self,
        tx: Tx,
        names: list[str] | None,
        exclude: list[str],
        now: float,
        limit: int,
        lease: str,
        until: float,
    ) -> list[pb.WorkItem]:
        """Lease entities of ``names`` (``None``: any but ``exclude``) in ``tx``;
        returns the work items to send."""
        rows = tx.claim_entities(names, now, limit, lease, until, exclude)
        if not rows:
            return []
        queues = tx.entity_ops([r.entity_id for r in rows], now, OPERATIONS)
        local: list[_entities.Batch] = []
        items: list[pb.WorkItem] = []
        for row in rows:
            ops = queues[row.entity_id]
            head = _head(ops)
            if not head or head[0].kind not in _USER_OPS:
                # Locks and unlocks need no user code: applied now (an empty batch only
                # gives the lease back).
                local.append(_entities.run_batch(_NO_CODE, row, head, now, float("inf")))
                continue
            token = f"{lease}/e/{row.entity_id}"
            with self._lock:
                self._sent[token] = _Sent(row, head)
            items.append(_work_item(token, row, head))
        if local:
            _entities.write_batches(tx, local, now)
        return items

    def complete(self, result: pb.EntityBatchResult) -> bool:
        """Write what an SDK worker did with a batch; ``False`` if it no longer counts
        (an unknown token, or the entity's lease was lost meanwhile)."""
        with self._lock:
            sent = self._sent.pop(result.completionToken, None)
        if sent is None:
            log.info("ignoring a stale entity batch result (unknown completion token)")
            return False
        if len(result.results) > len(sent.ops):
            raise ValidationError(
                f"the entity batch had {len(sent.ops)} operations, not {len(result.results)}"
            )
        batch = _batch_of(sent, result, self.clock.now())
        now = self.clock.now()
        return self.store.run(lambda tx: _entities.write_batches(tx, [batch], now)) > 0

    def abandon(self, token: str) -> None:
        """The worker gave a batch back: its operations stay queued; the lease runs out."""
        with self._lock:
            self._sent.pop(token, None)


class _NoCode(App):
    """An app without entities: a batch of locks and unlocks runs no user code."""


_NO_CODE = _NoCode()


def _head(ops: list[EntityOpRow]) -> list[EntityOpRow]:
    """The leading run of operations of one sort: calls and signals (for the worker), or
    locks and unlocks (applied here)."""
    if not ops:
        return []
    user = ops[0].kind in _USER_OPS
    head = []
    for op in ops:
        if (op.kind in _USER_OPS) != user:
            break
        head.append(op)
    return head


def _work_item(token: str, row: EntityRow, ops: list[EntityOpRow]) -> pb.WorkItem:
    request = pb.EntityBatchRequest(instanceId=row.entity_id)
    if row.state is not None:
        request.entityState.CopyFrom(wrappers_pb2.StringValue(value=row.state))
    for op in ops:
        item = request.operations.add(operation=op.operation or "", requestId=str(op.id))
        if op.input is not None and op.input != "null":
            item.input.CopyFrom(wrappers_pb2.StringValue(value=op.input))
    return pb.WorkItem(completionToken=token, entityRequest=request)


def _batch_of(sent: _Sent, result: pb.EntityBatchResult, now: float) -> _entities.Batch:
    """The writes of an SDK worker's batch result."""
    row = sent.row
    assert row.lease is not None
    state = (
        result.entityState.value
        if result.HasField("entityState") and result.entityState.value
        else None
    )
    batch = _entities.Batch(row, row.lease, state=row.state, locked_by=row.locked_by)
    if state is not None:
        loads(state)  # JSON text, or refused (the batch is not written)
    for op, outcome in zip(sent.ops, result.results, strict=False):
        batch.applied.append(op.id)
        if op.kind != _entities.CALL or op.caller_id is None:
            continue
        if outcome.HasField("failure"):
            failure = convert.failure_of(outcome.failure.failureDetails)
            fields: dict[str, Any] = {"failure": failure.to_json()}
            kind = h.ENTITY_FAILED
        else:
            what = f"the result of operation {op.operation!r}"
            fields = {"result": convert.lenient(outcome.success, "result", what)}
            kind = h.ENTITY_COMPLETED
        event = h.Event(kind, now, {"task_id": op.caller_task, **fields})
        batch.responses.append(NewMessage(op.caller_id, op.caller_execution, event, now))
    if state != row.state:
        batch.state, batch.modified = state, True
    for action in result.actions:
        if action.HasField("sendSignal"):
            signal = action.sendSignal
            at = convert.optional_time(signal, "scheduledTime") or now
            target = str(EntityId.parse(signal.instanceId))
            text = convert.lenient(signal, "input", "the signal input")
            batch.ops.append(
                NewEntityOp(target, _entities.SIGNAL, signal.name, dumps(text), max(at, now))
            )
        elif action.HasField("startNewOrchestration"):
            start = action.startNewOrchestration
            text = convert.lenient(start, "input", "the orchestration input")
            iid = start.instanceId or uuid.uuid4().hex
            batch.starts.append(OrchestrationStarted(start.name, iid, dumps(text)))
    return batch
