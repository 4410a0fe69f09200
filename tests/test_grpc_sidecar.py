"""tenuto as a Durable Task protocol backend: the real ``durabletask`` SDK (its
``TaskHubGrpcWorker`` and ``TaskHubGrpcClient``) against tenuto's gRPC sidecar, on SQLite
and PostgreSQL.

Most tests share one sidecar and one SDK worker per backend (an SDK worker takes a second
to stop); instance ids keep them apart. The worker serves only the names it registers
(work-item filters), so tests can bring their own workers for other names.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

pytest.importorskip("durabletask")

import durabletask.internal.orchestrator_service_pb2 as pb
import durabletask.internal.orchestrator_service_pb2_grpc as stubs
from durabletask import client as dc
from durabletask import task
from durabletask.worker import TaskHubGrpcWorker
from google.protobuf import empty_pb2, timestamp_pb2, wrappers_pb2

import tenuto
from sdk_helpers import Sidecar, open_sidecar, sdk_worker
from tenuto.grpc import GrpcServer

from helpers import wait_for

S = dc.OrchestrationStatus
TESTS = Path(__file__).parent
LEASE = 2.0

# -- what the shared SDK worker runs ----------------------------------------------------

calls: dict[str, int] = {}
_calls_lock = threading.Lock()


def _count(key: str) -> int:
    with _calls_lock:
        calls[key] = calls.get(key, 0) + 1
        return calls[key]


def greet(ctx: task.ActivityContext, name: str) -> str:
    _count(f"{ctx.orchestration_id}/greet/{name}")
    return f"hello {name}"


def square(ctx: task.ActivityContext, n: int) -> int:
    return n * n


def flaky(ctx: task.ActivityContext, fails: int) -> str:
    """Fails ``fails`` times per instance, then succeeds."""
    attempt = _count(f"{ctx.orchestration_id}/flaky")
    if attempt <= fails:
        raise RuntimeError(f"flaky failure {attempt}")
    return f"ok after {attempt}"


def boom(ctx: task.ActivityContext, message: str) -> None:
    raise ValueError(message)


def sequence(ctx: task.OrchestrationContext, names: list[str]) -> Any:
    out = []
    for n in names:
        out.append((yield ctx.call_activity(greet, input=n)))
        ctx.set_custom_status({"done": len(out)})
    return out


def fan_out(ctx: task.OrchestrationContext, n: int) -> Any:
    results = yield task.when_all([ctx.call_activity(square, input=i) for i in range(n)])
    return sum(results)


def child(ctx: task.OrchestrationContext, value: int) -> Any:
    doubled = yield ctx.call_activity(square, input=value)
    return {"child": ctx.instance_id, "value": doubled}


def parent(ctx: task.OrchestrationContext, value: int) -> Any:
    a = yield ctx.call_sub_orchestrator(child, input=value, instance_id=f"{ctx.instance_id}-c1")
    b = yield ctx.call_sub_orchestrator(child, input=value + 1)
    return [a, b]


def sleeper(ctx: task.OrchestrationContext, seconds: float) -> Any:
    start = ctx.current_utc_datetime
    yield ctx.create_timer(timedelta(seconds=seconds))
    return (ctx.current_utc_datetime - start).total_seconds()


def approval(ctx: task.OrchestrationContext, _: Any) -> Any:
    first = yield ctx.wait_for_external_event("first")
    second = yield ctx.wait_for_external_event("second")
    return [first, second]


def counter(ctx: task.OrchestrationContext, n: int) -> Any:
    if n < 3:
        yield ctx.call_activity(square, input=n)
        ctx.continue_as_new(n + 1)
        return None
    return n


def retrying(ctx: task.OrchestrationContext, fails: int) -> Any:
    policy = task.RetryPolicy(
        first_retry_interval=timedelta(milliseconds=50), max_number_of_attempts=3
    )
    return (yield ctx.call_activity(flaky, input=fails, retry_policy=policy))


def failing(ctx: task.OrchestrationContext, message: str) -> Any:
    yield ctx.call_activity(boom, input=message)
    return "not reached"


def rewindable(ctx: task.OrchestrationContext, _: Any) -> Any:
    a = yield ctx.call_activity(greet, input="before")
    b = yield ctx.call_activity(flaky, input=1)  # fails on the first run only
    return [a, b]


def waiter_parent(ctx: task.OrchestrationContext, _: Any) -> Any:
    yield ctx.call_sub_orchestrator(approval, instance_id=f"{ctx.instance_id}-c")
    return "not reached"


def versioned_child(ctx: task.OrchestrationContext, _: Any) -> Any:
    return ctx.version


def versioned(ctx: task.OrchestrationContext, seen: list[Any]) -> Any:
    """Records the version each execution sees: kept by a plain continue-as-new,
    changed by one with a new version; then calls a child of another version."""
    seen = [*seen, ctx.version]
    if len(seen) == 1:
        ctx.continue_as_new(seen)
        return None
    if len(seen) == 2:
        ctx.continue_as_new(seen, new_version="2.0")
        return None
    child_version = yield ctx.call_sub_orchestrator(
        versioned_child, instance_id=f"{ctx.instance_id}-v", version="9.9"
    )
    return {"seen": seen, "child": child_version}


ORCHESTRATORS = [
    versioned,
    versioned_child,
    sequence,
    fan_out,
    child,
    parent,
    sleeper,
    approval,
    counter,
    retrying,
    failing,
    rewindable,
    waiter_parent,
]
ACTIVITIES = [greet, square, flaky, boom]


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def sidecar(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sidecar]:
    """A sidecar (with its housekeeping worker) and an SDK worker, per backend."""
    with open_sidecar(request.param, tmp_path_factory.mktemp("grpc"), LEASE) as side:
        worker = sdk_worker(side.address, ORCHESTRATORS, ACTIVITIES)
        wait_for(lambda: side.server.dispatcher.streams, what="the SDK worker to connect")
        try:
            yield side
        finally:
            worker.stop()


@pytest.fixture
def stub(sidecar: Sidecar) -> Iterator[Any]:
    channel = grpc.insecure_channel(sidecar.address)
    yield stubs.TaskHubSidecarServiceStub(channel)
    channel.close()


# -- orchestration patterns -------------------------------------------------------------


def test_activity_sequence_is_an_ordinary_tenuto_instance(sidecar: Sidecar) -> None:
    state = sidecar.run(sequence, ["a", "b", "c"])
    assert state.runtime_status == S.COMPLETED
    assert state.serialized_output == json.dumps(["hello a", "hello b", "hello c"])
    assert json.loads(state.serialized_custom_status) == {"done": 3}
    # The same instance, seen by tenuto.
    st = sidecar.tenuto.status(state.instance_id)
    assert st.runtime_status is tenuto.Status.COMPLETED
    assert st.name == "sequence" and st.input == ["a", "b", "c"]
    assert st.output == ["hello a", "hello b", "hello c"]
    assert st.custom_status == {"done": 3}
    types = [e.type for e in sidecar.tenuto.history(state.instance_id)]
    assert types.count("TaskScheduled") == 3 and types.count("TaskCompleted") == 3
    assert types[-1] == "ExecutionCompleted"
    listed = sidecar.tenuto.query(name="sequence", status="COMPLETED").items
    assert state.instance_id in [s.instance_id for s in listed]
    # Each activity ran once.
    for n in "abc":
        assert calls[f"{state.instance_id}/greet/{n}"] == 1


def test_fan_out_fan_in(sidecar: Sidecar) -> None:
    state = sidecar.run(fan_out, 10)
    assert state.runtime_status == S.COMPLETED
    assert state.serialized_output == str(sum(i * i for i in range(10)))


def test_sub_orchestrations(sidecar: Sidecar) -> None:
    state = sidecar.run(parent, 3)
    assert state.runtime_status == S.COMPLETED, state.failure_details
    out = json.loads(state.serialized_output)
    assert out[0] == {"child": f"{state.instance_id}-c1", "value": 9}
    assert out[1]["value"] == 16
    kid = sidecar.tenuto.status(f"{state.instance_id}-c1")
    assert kid.parent_instance_id == state.instance_id
    assert kid.runtime_status is tenuto.Status.COMPLETED


def test_durable_timer_and_scheduled_start(sidecar: Sidecar) -> None:
    state = sidecar.run(sleeper, 0.4)
    assert state.runtime_status == S.COMPLETED
    assert float(state.serialized_output) >= 0.4

    at = datetime.now(UTC) + timedelta(seconds=0.5)
    iid = sidecar.client.schedule_new_orchestration(sleeper, input=0, start_at=at)
    st = sidecar.client.get_orchestration_state(iid)
    assert st is not None and st.runtime_status == S.PENDING
    started = sidecar.client.wait_for_orchestration_start(iid, timeout=10)
    assert started is not None and started.runtime_status != S.PENDING
    assert datetime.now(UTC) >= at
    done = sidecar.client.wait_for_orchestration_completion(iid, timeout=10)
    assert done is not None and done.runtime_status == S.COMPLETED


def test_external_events(sidecar: Sidecar) -> None:
    iid = sidecar.client.schedule_new_orchestration(approval)
    sidecar.client.wait_for_orchestration_start(iid, timeout=10)
    sidecar.client.raise_orchestration_event(iid, "second", data={"n": 2})
    sidecar.client.raise_orchestration_event(iid, "first", data="one")
    state = sidecar.client.wait_for_orchestration_completion(iid, timeout=10)
    assert state is not None and state.runtime_status == S.COMPLETED
    assert state.serialized_output == json.dumps(["one", {"n": 2}])


def test_continue_as_new(sidecar: Sidecar) -> None:
    state = sidecar.run(counter, 0)
    assert state.runtime_status == S.COMPLETED
    assert state.serialized_output == "3"
    st = sidecar.tenuto.status(state.instance_id)
    assert st.input == 3


def test_activity_retries(sidecar: Sidecar) -> None:
    state = sidecar.run(retrying, 2)
    assert state.runtime_status == S.COMPLETED, state.failure_details
    assert state.serialized_output == '"ok after 3"'
    failed = sidecar.run(retrying, 5)  # three attempts are not enough
    assert failed.runtime_status == S.FAILED
    assert "flaky failure 3" in failed.failure_details.message


def test_failures_carry_their_details(sidecar: Sidecar) -> None:
    state = sidecar.run(failing, "disk on fire")
    assert state.runtime_status == S.FAILED
    assert "disk on fire" in state.failure_details.message
    st = sidecar.tenuto.status(state.instance_id)
    assert st.runtime_status is tenuto.Status.FAILED
    assert st.failure is not None and "disk on fire" in st.failure.message
    history = sidecar.tenuto.history(state.instance_id)
    failed = next(e for e in history if e.type == "TaskFailed")
    assert failed.data["failure"]["type"].endswith("ValueError")


def test_terminate_recursively(sidecar: Sidecar) -> None:
    iid = sidecar.client.schedule_new_orchestration(waiter_parent)
    kid = f"{iid}-c"
    wait_for(lambda: _status(sidecar, kid) is tenuto.Status.RUNNING, what="the child to run")
    sidecar.client.terminate_orchestration(iid, output="no longer needed", recursive=True)
    state = sidecar.client.wait_for_orchestration_completion(iid, timeout=10)
    assert state is not None and state.runtime_status == S.TERMINATED
    assert sidecar.tenuto.status(kid).runtime_status is tenuto.Status.TERMINATED
    terminated = [e for e in sidecar.tenuto.history(iid) if e.type == "ExecutionTerminated"]
    assert terminated[0].data == {"reason": "no longer needed", "by": "grpc"}


def _status(sidecar: Sidecar, iid: str) -> tenuto.Status | None:
    try:
        return sidecar.tenuto.status(iid).runtime_status
    except tenuto.InstanceNotFound:
        return None


def test_suspend_and_resume_with_events_raised_while_suspended(sidecar: Sidecar) -> None:
    iid = sidecar.client.schedule_new_orchestration(approval)
    sidecar.client.wait_for_orchestration_start(iid, timeout=10)
    sidecar.client.suspend_orchestration(iid, reason="change freeze")
    st = sidecar.client.get_orchestration_state(iid)
    assert st is not None and st.runtime_status == S.SUSPENDED
    # tenuto's pause, with reason and actor.
    ts = sidecar.tenuto.status(iid)
    assert ts.runtime_status is tenuto.Status.PAUSED
    assert ts.pause is not None and ts.pause.reason == "change freeze" and ts.pause.by == "grpc"
    sidecar.client.raise_orchestration_event(iid, "first", data=1)
    sidecar.client.raise_orchestration_event(iid, "second", data=2)
    # Kept, not delivered: the orchestration does not advance while suspended.
    with pytest.raises(TimeoutError):
        sidecar.client.wait_for_orchestration_completion(iid, timeout=0.5)
    assert not [e for e in sidecar.tenuto.history(iid) if e.type == "EventRaised"]
    sidecar.client.resume_orchestration(iid, reason="freeze over")
    state = sidecar.client.wait_for_orchestration_completion(iid, timeout=10)
    assert state is not None and state.runtime_status == S.COMPLETED
    assert state.serialized_output == json.dumps([1, 2])
    kinds = [e.type for e in sidecar.tenuto.history(iid)]
    assert kinds.index("ExecutionSuspended") < kinds.index("ExecutionResumed")
    assert kinds.index("ExecutionResumed") < kinds.index("EventRaised")


def test_tenuto_pause_holds_the_activities_of_an_sdk_instance(sidecar: Sidecar) -> None:
    """Paused with tenuto's own client: PAUSED with its reason, and its queued activity
    is not handed to a connected SDK worker that has it until the resume."""

    def gated(ctx: task.OrchestrationContext, value: Any) -> Any:
        return (yield ctx.call_activity("gated_step", input=value))

    ran: list[Any] = []

    def gated_step(ctx: task.ActivityContext, value: Any) -> Any:
        ran.append(value)
        return value * 2

    orchestrating = sdk_worker(sidecar.address, [gated], [])
    try:
        iid = sidecar.client.schedule_new_orchestration(gated, input=21)
        # The step that schedules the activity commits; no worker has the activity yet.
        wait_for(
            lambda: any(e.type == "TaskScheduled" for e in sidecar.tenuto.history(iid)),
            what="the activity to be scheduled",
        )
        assert sidecar.tenuto.pause(iid, reason="downstream outage", by="ops")
        st = sidecar.tenuto.status(iid)
        assert st.runtime_status is tenuto.Status.PAUSED
        assert st.pause is not None and st.pause.reason == "downstream outage"
        sdk = sidecar.client.get_orchestration_state(iid)
        assert sdk is not None and sdk.runtime_status == S.SUSPENDED

        before = {s.id for s in sidecar.server.dispatcher.streams}
        activities = sdk_worker(sidecar.address, [], [gated_step])
        try:
            stream = wait_for(
                lambda: [s for s in sidecar.server.dispatcher.streams if s.id not in before],
                what="the activity worker to connect",
            )[0]
            seen = stream.claims
            wait_for(lambda: stream.claims >= seen + 3, what="claims by the activity worker")
            assert ran == []  # held while paused
            sidecar.tenuto.resume(iid, reason="back")
            state = sidecar.client.wait_for_orchestration_completion(iid, timeout=10)
            assert state is not None and state.runtime_status == S.COMPLETED
            assert state.serialized_output == "42" and ran == [21]
        finally:
            activities.stop()
    finally:
        orchestrating.stop()


def test_tenuto_scheduled_resume_and_bulk_pause_apply_to_sdk_instances(sidecar: Sidecar) -> None:
    iid = sidecar.client.schedule_new_orchestration(approval)
    sidecar.client.wait_for_orchestration_start(iid, timeout=10)
    changed = sidecar.tenuto.pause_many(name="approval", id_prefix=iid, reason="night", by="ops")
    assert changed == 1
    resume_at = datetime.now(UTC) + timedelta(seconds=0.3)
    sidecar.tenuto.resume(iid)
    sidecar.tenuto.pause(iid, reason="short break", resume_at=resume_at)
    sidecar.client.raise_orchestration_event(iid, "first", data="a")
    sidecar.client.raise_orchestration_event(iid, "second", data="b")
    # Resumed by the housekeeping worker at resume_at, then the events are delivered.
    state = sidecar.client.wait_for_orchestration_completion(iid, timeout=10)
    assert state is not None and state.runtime_status == S.COMPLETED
    assert state.serialized_output == json.dumps(["a", "b"])
    assert datetime.now(UTC) >= resume_at
    resumed = [e for e in sidecar.tenuto.history(iid) if e.type == "ExecutionResumed"]
    assert resumed[-1].data["by"] == "schedule"


def test_purge_by_id_and_by_filter(sidecar: Sidecar) -> None:
    a = sidecar.run(fan_out, 2).instance_id
    b = sidecar.run(fan_out, 3).instance_id
    result = sidecar.client.purge_orchestration(a)
    assert result.deleted_instance_count == 1
    assert sidecar.client.get_orchestration_state(a) is None
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    result = sidecar.client.purge_orchestrations_by(
        created_time_to=cutoff, runtime_status=[S.COMPLETED]
    )
    assert result.deleted_instance_count >= 1
    assert sidecar.client.get_orchestration_state(b) is None


def test_a_status_filter_that_matches_no_finished_instance_purges_and_lists_none(
    sidecar: Sidecar, stub: Any
) -> None:
    """Statuses that no finished instance has (RUNNING, or CANCELED, which tenuto never
    uses) match nothing: before, they were dropped and the filter then matched every
    finished instance, so such a purge deleted them all."""
    since = datetime.now(UTC) - timedelta(seconds=1)
    done = sidecar.run(fan_out, 2).instance_id
    until = datetime.now(UTC) + timedelta(seconds=1)
    for statuses in ([S.RUNNING], [S.SUSPENDED, S.CONTINUED_AS_NEW], [S.RUNNING, S.PENDING]):
        page = sidecar.client.list_instance_ids(
            runtime_status=statuses, completed_time_from=since, completed_time_to=until
        )
        assert page.items == [], statuses
        result = sidecar.client.purge_orchestrations_by(
            created_time_from=since, created_time_to=until, runtime_status=statuses
        )
        assert result.deleted_instance_count == 0, statuses
    canceled = pb.PurgeInstanceFilter(
        createdTimeFrom=_timestamp(since),
        createdTimeTo=_timestamp(until),
        runtimeStatus=[pb.ORCHESTRATION_STATUS_CANCELED],
    )
    resp = stub.PurgeInstances(pb.PurgeInstancesRequest(purgeInstanceFilter=canceled))
    assert resp.deletedInstanceCount == 0
    query = pb.InstanceQuery(
        instanceIdPrefix=wrappers_pb2.StringValue(value=done),
        runtimeStatus=[pb.ORCHESTRATION_STATUS_CANCELED],
    )
    assert not stub.QueryInstances(pb.QueryInstancesRequest(query=query)).orchestrationState
    assert sidecar.client.get_orchestration_state(done) is not None
    page = sidecar.client.list_instance_ids(
        runtime_status=[S.COMPLETED, S.RUNNING], completed_time_from=since
    )
    assert done in page.items


def _timestamp(value: datetime) -> Any:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def test_restart_with_same_and_new_id(sidecar: Sidecar) -> None:
    first = sidecar.run(sequence, ["x"])
    same = sidecar.client.restart_orchestration(first.instance_id)
    assert same == first.instance_id
    again = sidecar.client.wait_for_orchestration_completion(same, timeout=10)
    assert again is not None and again.runtime_status == S.COMPLETED
    assert again.serialized_input == '["x"]'
    assert calls[f"{same}/greet/x"] == 2
    other = sidecar.client.restart_orchestration(same, restart_with_new_instance_id=True)
    assert other != same
    done = sidecar.client.wait_for_orchestration_completion(other, timeout=10)
    assert done is not None and done.serialized_output == '["hello x"]'


def test_rewind_reruns_only_the_failed_work(sidecar: Sidecar) -> None:
    policyless = sidecar.run(rewindable)
    iid = policyless.instance_id
    assert policyless.runtime_status == S.FAILED
    assert calls[f"{iid}/greet/before"] == 1
    sidecar.client.rewind_orchestration(iid, reason="fixed the bug")
    state = sidecar.client.wait_for_orchestration_completion(iid, timeout=10)
    assert state is not None and state.runtime_status == S.COMPLETED, state.failure_details
    assert state.serialized_output == json.dumps(["hello before", "ok after 2"])
    assert calls[f"{iid}/greet/before"] == 1  # the activity that succeeded did not run again
    kinds = [e.type for e in sidecar.tenuto.history(iid)]
    assert "TaskFailed" not in kinds and "ExecutionRewound" in kinds


def test_query_and_list_with_paging(sidecar: Sidecar) -> None:
    prefix = f"q{uuid.uuid4().hex[:6]}-"
    ids = [f"{prefix}{i}" for i in range(5)]
    for iid in ids:
        sidecar.client.schedule_new_orchestration(fan_out, input=1, instance_id=iid)
    for iid in ids:
        sidecar.client.wait_for_orchestration_completion(iid, timeout=10)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        query = pb.QueryInstancesRequest(
            query=pb.InstanceQuery(
                maxInstanceCount=2,
                instanceIdPrefix=wrappers_pb2.StringValue(value=prefix),
                continuationToken=token,
            )
        )
        resp = sidecar.client._stub.QueryInstances(query)
        seen += [s.instanceId for s in resp.orchestrationState]
        pages += 1
        if not resp.HasField("continuationToken"):
            break
        token = resp.continuationToken
    assert sorted(seen) == ids and pages == 3
    states = sidecar.client.get_all_orchestration_states(
        dc.OrchestrationQuery(instance_id_prefix=prefix, fetch_inputs_and_outputs=True)
    )
    assert sorted(s.instance_id for s in states) == ids
    assert all(s.serialized_output == "0" for s in states)

    listed: list[str] = []
    cont = None
    while True:
        page = sidecar.client.list_instance_ids(
            runtime_status=[S.COMPLETED], page_size=3, continuation_token=cont
        )
        listed += page.items
        cont = page.continuation_token
        if cont is None:
            break
    assert set(ids) <= set(listed) and len(listed) == len(set(listed))


def test_stream_history(sidecar: Sidecar) -> None:
    state = sidecar.run(sequence, ["h"])
    events = sidecar.client.get_orchestration_history(state.instance_id)
    names = [type(e).__name__ for e in events]
    assert names[0] == "OrchestratorStartedEvent" and "TaskScheduledEvent" in names
    assert names[-1] == "ExecutionCompletedEvent"


def test_errors_are_grpc_statuses(sidecar: Sidecar, stub: Any) -> None:
    assert sidecar.client.get_orchestration_state("nope") is None
    with pytest.raises(grpc.RpcError) as info:
        sidecar.client.raise_orchestration_event("nope", "x")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        sidecar.client.suspend_orchestration("nope")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        stub.StartInstance(
            pb.CreateInstanceRequest(name="sequence", input=wrappers_pb2.StringValue(value="{"))
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "JSON" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        stub.StartInstance(pb.CreateInstanceRequest(name=""))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    done = sidecar.run(fan_out, 1).instance_id
    with pytest.raises(grpc.RpcError) as info:
        sidecar.client.schedule_new_orchestration(fan_out, input=1, instance_id=done)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as info:
        sidecar.client.suspend_orchestration(done)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as info:
        sidecar.client.rewind_orchestration(done)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert not stub.GetEntity(pb.GetEntityRequest(instanceId="@counter@x")).exists
    with pytest.raises(grpc.RpcError) as info:
        stub.GetEntity(pb.GetEntityRequest(instanceId="counter-x"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    stub.Hello(empty_pb2.Empty())


def test_version_and_tags_are_stored_and_returned(sidecar: Sidecar, stub: Any) -> None:
    tags = {"team": "storage", "env": "prod é"}
    iid = sidecar.client.schedule_new_orchestration(versioned, input=[], tags=tags, version="1.0")
    state = sidecar.client.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and state.runtime_status == S.COMPLETED, state.failure_details
    # The orchestration saw its version (ExecutionStarted), kept across continue-as-new
    # and changed by continue_as_new(new_version=...); the child got its own.
    assert json.loads(state.serialized_output) == {"seen": ["1.0", "1.0", "2.0"], "child": "9.9"}
    # GetInstance and QueryInstances return them (the SDK's OrchestrationState does
    # not expose them: read the protocol's answer).
    got = stub.GetInstance(pb.GetInstanceRequest(instanceId=iid)).orchestrationState
    assert got.version.value == "2.0" and dict(got.tags) == tags
    query = pb.InstanceQuery(instanceIdPrefix=wrappers_pb2.StringValue(value=iid))
    listed = {
        s.instanceId: s
        for s in stub.QueryInstances(pb.QueryInstancesRequest(query=query)).orchestrationState
    }
    assert listed[iid].version.value == "2.0" and dict(listed[iid].tags) == tags
    assert listed[f"{iid}-v"].version.value == "9.9" and not listed[f"{iid}-v"].tags
    # tenuto sees the same.
    st = sidecar.tenuto.status(iid)
    assert st.version == "2.0" and st.tags == tags
    child_st = sidecar.tenuto.status(f"{iid}-v")
    assert child_st.version == "9.9" and child_st.tags is None
    # Restart keeps them.
    again = sidecar.client.restart_orchestration(iid, restart_with_new_instance_id=True)
    assert sidecar.tenuto.status(again).tags == tags
    sidecar.client.wait_for_orchestration_completion(again, timeout=30)
    # Without version and tags: none.
    plain = stub.GetInstance(
        pb.GetInstanceRequest(instanceId=sidecar.run(fan_out, 1).instance_id)
    ).orchestrationState
    assert not plain.HasField("version") and not plain.tags
    # Invalid tags are refused with a clear message.
    with pytest.raises(grpc.RpcError) as info:
        sidecar.client.schedule_new_orchestration(fan_out, input=1, tags={"k": "a\nb"})
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "tag 'k'" in info.value.details()


def test_a_worker_over_an_empty_app_claims_nothing(sidecar: Sidecar) -> None:
    """``tenuto serve --grpc-port`` without an app runs such a worker for housekeeping:
    it must leave SDK work alone."""
    iid = sidecar.client.schedule_new_orchestration("nobody_runs_this")
    empty = tenuto.Worker(tenuto.App(), store=sidecar.server.store)
    for _ in range(3):
        empty._cycle()
    assert sidecar.tenuto.status(iid).runtime_status is tenuto.Status.PENDING
    assert sidecar.tenuto.status(iid).runtime_status is tenuto.Status.PENDING
    sidecar.client.terminate_orchestration(iid)


def test_a_killed_worker_s_activity_is_finished_by_another(
    sidecar: Sidecar, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, str(TESTS / "apps" / "sdk_worker.py"), sidecar.address, str(marker)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        iid = sidecar.client.schedule_new_orchestration("kill_flow", input="payload")
        wait_for(marker.exists, timeout=30, what="the activity to start in the worker process")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    killed_at = time.monotonic()

    def kill_flow(ctx: task.OrchestrationContext, value: Any) -> Any:
        return (yield ctx.call_activity("slow_step", input=value))

    def slow_step(ctx: task.ActivityContext, value: Any) -> Any:
        return f"finished {value}"

    rescuer = sdk_worker(sidecar.address, [kill_flow], [slow_step])
    try:
        state = sidecar.client.wait_for_orchestration_completion(iid, timeout=30)
        assert state is not None and state.runtime_status == S.COMPLETED, state.failure_details
        assert state.serialized_output == '"finished payload"'
        # Not before the dead worker's lease ran out.
        assert time.monotonic() - killed_at >= LEASE * 0.5
    finally:
        rescuer.stop()


# -- bearer tokens ----------------------------------------------------------------------


def test_tokens_are_required_on_every_call(tmp_path: Path) -> None:
    """With tokens, a call without the right ``authorization: Bearer`` metadata is
    refused UNAUTHENTICATED; with it, clients and workers work and the token's name is the
    actor of a suspend."""
    db = f"sqlite:///{tmp_path / 'auth.db'}"
    with (
        GrpcServer(db, port=0, lease_seconds=LEASE, tokens={"s3cret": "ops"}) as server,
        tenuto.Client(store=server.store) as watcher,
    ):
        address = f"127.0.0.1:{server.port}"
        for metadata in (None, [("authorization", "Bearer wrong")], [("authorization", "s3cret")]):
            anonymous = dc.TaskHubGrpcClient(host_address=address, metadata=metadata)
            try:
                with pytest.raises(grpc.RpcError) as info:
                    anonymous.schedule_new_orchestration(sequence, input=["x"])
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert "bearer token" in info.value.details()
                with pytest.raises(grpc.RpcError) as info:
                    anonymous.get_orchestration_state("any")
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            finally:
                anonymous.close()
        # A worker's stream is refused too.
        channel = grpc.insecure_channel(address)
        try:
            with pytest.raises(grpc.RpcError) as info:
                next(
                    iter(
                        stubs.TaskHubSidecarServiceStub(channel).GetWorkItems(
                            pb.GetWorkItemsRequest()
                        )
                    )
                )
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        finally:
            channel.close()
        assert not server.dispatcher.streams
        assert watcher.query().items == []

        metadata = [("authorization", "Bearer s3cret")]
        sdk = dc.TaskHubGrpcClient(host_address=address, metadata=metadata)
        worker = TaskHubGrpcWorker(host_address=address, metadata=metadata)
        for o in (sequence, approval):
            worker.add_orchestrator(o)
        worker.add_activity(greet)
        worker.use_work_item_filters()
        worker.start()
        try:
            iid = sdk.schedule_new_orchestration(sequence, input=["token"])
            state = sdk.wait_for_orchestration_completion(iid, timeout=30)
            assert state is not None and state.runtime_status == S.COMPLETED
            waiting = sdk.schedule_new_orchestration(approval)
            sdk.wait_for_orchestration_start(waiting, timeout=10)
            sdk.suspend_orchestration(waiting, reason="audit")
            paused = watcher.status(waiting)
            assert paused.pause is not None and paused.pause.by == "ops"
            sdk.terminate_orchestration(waiting)
        finally:
            worker.stop()
            sdk.close()


# -- the real CLI, without an app module ----------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_tenuto_serve_grpc_port_without_an_app(db_url: str) -> None:
    grpc_port, http_port = _free_port(), _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tenuto",
            "serve",
            "--db",
            db_url,
            "--grpc-port",
            str(grpc_port),
            "--port",
            str(http_port),
            "--lease-seconds",
            "5",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    address = f"127.0.0.1:{grpc_port}"
    try:
        channel = grpc.insecure_channel(address)
        grpc.channel_ready_future(channel).result(timeout=30)
        channel.close()
        worker = sdk_worker(address, [sequence], [greet])
        sdk = dc.TaskHubGrpcClient(host_address=address)
        try:
            iid = sdk.schedule_new_orchestration(sequence, input=["cli"])
            state = sdk.wait_for_orchestration_completion(iid, timeout=30)
            assert state is not None and state.runtime_status == S.COMPLETED
            assert state.serialized_output == '["hello cli"]'
            # Shown by `tenuto list`, like any instance.
            listed = subprocess.run(
                [sys.executable, "-m", "tenuto", "list", "--db", db_url, "--json"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert listed.returncode == 0, listed.stderr
            assert iid in listed.stdout
        finally:
            sdk.close()
            worker.stop()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
