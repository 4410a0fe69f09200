"""The entity client calls of the Durable Task protocol, made by the real ``durabletask``
SDK client against tenuto's gRPC sidecar, with a tenuto worker running the entities:
SignalEntity (now and at a time), GetEntity, QueryEntities (prefix, paging, state or
not) and CleanEntityStorage, on both backends. Entity work items for SDK workers are
not served (UNIMPLEMENTED)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

pytest.importorskip("durabletask")

import durabletask.internal.orchestrator_service_pb2 as pb
import durabletask.internal.orchestrator_service_pb2_grpc as stubs
from durabletask import client as dc
from durabletask.entities import EntityInstanceId
from durabletask.worker import TaskHubGrpcWorker

import tenuto
from sdk_helpers import Sidecar, open_sidecar
from test_entities_http import app  # a Counter class entity

from helpers import wait_for


@pytest.fixture(params=["sqlite", "postgres"])
def side(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Sidecar]:
    with open_sidecar(request.param, tmp_path, 2.0) as sidecar:
        worker = tenuto.Worker(app, store=sidecar.server.store, poll_interval=0.1).start()
        try:
            yield sidecar
        finally:
            worker.stop()


def _state(side: Sidecar, key: str) -> Any:
    """The state as the SDK reads it: the stored JSON text, decoded here."""
    found = side.client.get_entity(EntityInstanceId("counter", key))
    return None if found is None else json.loads(found.get_state())


def test_sdk_client_signals_reads_queries_and_cleans(side: Sidecar) -> None:
    c = side.client
    assert c.get_entity(EntityInstanceId("counter", "a")) is None
    c.signal_entity(EntityInstanceId("Counter", "a"), "add", input=3)
    c.signal_entity(EntityInstanceId("counter", "b"), "add", input=1)
    wait_for(lambda: _state(side, "a") == {"value": 3} and _state(side, "b") == {"value": 1})
    found = c.get_entity(EntityInstanceId("counter", "a"))
    assert found is not None and str(found.id) == "@counter@a"
    assert found.backlog_queue_size == 0 and not found.get_locked_by()
    later = datetime.now(UTC) + timedelta(seconds=1)
    c.signal_entity(EntityInstanceId("counter", "a"), "add", input=4, signal_time=later)
    wait_for(lambda: _state(side, "a") == {"value": 7})
    read = side.tenuto.get_entity("@counter@a")
    assert read is not None and read.last_modified >= later

    every = c.get_all_entities(dc.EntityQuery(instance_id_starts_with="@counter@", page_size=1))
    assert [str(e.id) for e in every] == ["@counter@a", "@counter@b"]
    only_b = c.get_all_entities(dc.EntityQuery(instance_id_starts_with="@counter@b"))
    assert [str(e.id) for e in only_b] == ["@counter@b"]
    assert only_b[0].get_state() == '{"value":1}'  # tenuto's JSON text, byte for byte
    bare = c.get_all_entities(dc.EntityQuery(instance_id_starts_with="@cou", include_state=False))
    assert len(bare) == 2 and not bare[0].includes_state
    assert c.get_all_entities(dc.EntityQuery(instance_id_starts_with="@other@")) == []

    side.tenuto.signal_entity("@counter@empty", "delete")
    wait_for(lambda: side.tenuto.get_entity("@counter@empty").pending_operations == 0)  # type: ignore[union-attr]
    cleaned = c.clean_entity_storage()
    assert (cleaned.empty_entities_removed, cleaned.orphaned_locks_released) == (1, 0)


def test_bad_entity_requests_and_work_items(side: Sidecar) -> None:
    channel = grpc.insecure_channel(side.address)
    stub = stubs.TaskHubSidecarServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.SignalEntity(pb.SignalEntityRequest(instanceId="counter-a", name="add"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "@name@key" in info.value.details()
    # A result nobody asked for (an unknown completion token) changes nothing.
    stub.CompleteEntityTask(pb.EntityBatchResult(completionToken="nobody"))
    channel.close()


# -- entities run by an SDK worker ---------------------------------------------------------


def sdk_counter(ctx: Any, amount: Any) -> Any:
    """A function-based Durable Task SDK entity."""
    value = ctx.get_state(int, 0)
    if ctx.operation == "add":
        value += amount
        ctx.set_state(value)
        if value >= 100:
            ctx.signal_entity(EntityInstanceId("sdk_counter", "overflow"), "add", 1)
        return value
    if ctx.operation == "fail":
        raise ValueError(f"failing on purpose at {value}")
    return value


mixed = tenuto.App()


@mixed.orchestrator
def calls_sdk_entity(ctx: tenuto.OrchestrationContext, key: str) -> Any:
    first = yield ctx.call_entity(f"@sdk_counter@{key}", "add", 5)
    try:
        yield ctx.call_entity(f"@sdk_counter@{key}", "fail")
    except tenuto.EntityOperationFailed as error:
        failed = error.failure.message
    with (yield ctx.lock_entities(f"@sdk_counter@{key}")):
        locked = yield ctx.call_entity(f"@sdk_counter@{key}", "add", 95)
    return [first, failed, locked]


def test_an_sdk_worker_runs_entities_for_sdk_and_tenuto_callers(side: Sidecar) -> None:
    w = TaskHubGrpcWorker(host_address=side.address)
    w.add_entity(sdk_counter)
    w.use_work_item_filters()
    w.start()
    tw = tenuto.Worker(mixed, store=side.server.store, poll_interval=0.1).start()
    try:
        c = side.client
        c.signal_entity(EntityInstanceId("sdk_counter", "a"), "add", input=3)
        c.signal_entity(EntityInstanceId("sdk_counter", "a"), "add", input=4)
        wait_for(lambda: _sdk_state(side, "a") == 7, timeout=30)
        iid = side.tenuto.start("calls_sdk_entity", "b")
        done = side.tenuto.wait(iid, timeout=30)
        assert done.runtime_status is tenuto.Status.COMPLETED, done.failure
        assert done.output == [5, "failing on purpose at 5", 100]
        # The SDK entity's own signal (at 100) was sent, once.
        wait_for(lambda: _sdk_state(side, "overflow") == 1, timeout=30)
        assert side.tenuto.get_entity("@sdk_counter@b").locked_by is None  # type: ignore[union-attr]
    finally:
        tw.stop()
        w.stop()


def _sdk_state(side: Sidecar, key: str) -> Any:
    found = side.tenuto.get_entity(f"@sdk_counter@{key}")
    return None if found is None else found.state


# -- SDK orchestrations calling entities ----------------------------------------------------


def sdk_caller(ctx: Any, key: str) -> Any:
    """An SDK orchestration: calls, a signal, a failing call, a critical section."""
    mine = EntityInstanceId("sdk_counter", key)
    theirs = EntityInstanceId("counter", key)  # run by a tenuto worker
    first = yield ctx.call_entity(mine, "add", 2)
    ctx.signal_entity(mine, "add", 10)
    other = yield ctx.call_entity(theirs, "add", 3)
    try:
        yield ctx.call_entity(mine, "fail")
        failed = None
    except Exception as error:  # the SDK raises its TaskFailedError
        failed = str(error)
    with (yield ctx.lock_entities([mine, theirs])):
        locked = yield ctx.call_entity(mine, "add", 1)
    return [first, other, locked, "failing on purpose at 12" in (failed or "")]


def test_sdk_orchestrations_call_signal_and_lock_entities(side: Sidecar) -> None:
    w = TaskHubGrpcWorker(host_address=side.address)
    w.add_entity(sdk_counter)
    w.add_orchestrator(sdk_caller)
    w.use_work_item_filters()
    w.start()
    try:
        iid = side.client.schedule_new_orchestration(sdk_caller, input="o")
        state = side.client.wait_for_orchestration_completion(iid, timeout=30)
        assert state is not None and state.runtime_status == dc.OrchestrationStatus.COMPLETED, (
            state and state.failure_details
        )
        assert json.loads(state.serialized_output) == [2, 3, 13, True]
        for entity in ("@sdk_counter@o", "@counter@o"):
            assert side.tenuto.get_entity(entity).locked_by is None  # type: ignore[union-attr]
        kinds = [e.type for e in side.tenuto.history(iid)]
        assert "EntityLockGranted" in kinds and kinds.count("EntityOperationCalled") == 4
    finally:
        w.stop()
