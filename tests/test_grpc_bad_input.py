"""Bad input through the Durable Task protocol (issue 22, items 5, 8 and 11): the real
``durabletask`` SDK and raw gRPC calls against tenuto's sidecar, on both backends.

A value an SDK worker produces that cannot be stored as JSON text fails that activity or
that orchestration, and everything else goes on; a client call carrying one is refused
with ``INVALID_ARGUMENT`` before anything is written; an over-long id is an
``INVALID_ARGUMENT`` whose message does not echo it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

pytest.importorskip("durabletask")

import durabletask.internal.orchestrator_service_pb2 as pb
import durabletask.internal.orchestrator_service_pb2_grpc as stubs
from durabletask import client as dc
from durabletask import task
from google.protobuf import wrappers_pb2

from conftest import drop_postgres_schema, new_db_url
from tenuto import Status
from tenuto.grpc import GrpcServer
from test_grpc_sidecar import Sidecar, sdk_worker

from helpers import wait_for

S = dc.OrchestrationStatus
NOT_UTF8 = "report-\udcff.csv"  # os.fsdecode(b"report-\xff.csv")


def list_files(ctx: task.ActivityContext, _: Any) -> list[str]:
    return ["ok.csv", NOT_UTF8]


def double(ctx: task.ActivityContext, n: int) -> int:
    return 2 * n


def reads_files(ctx: task.OrchestrationContext, _: Any) -> Any:
    return (yield ctx.call_activity(list_files))


def doubles(ctx: task.OrchestrationContext, n: int) -> Any:
    a = yield ctx.call_activity(double, input=n)
    return (yield ctx.call_activity(double, input=a))


def returns_bad(ctx: task.OrchestrationContext, _: Any) -> Any:
    yield ctx.call_activity(double, input=1)
    return {"file": NOT_UTF8}


def reports_bad(ctx: task.OrchestrationContext, _: Any) -> Any:
    yield ctx.call_activity(double, input=1)
    ctx.set_custom_status({"file": NOT_UTF8})
    return "done"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def sidecar(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sidecar]:
    """A sidecar and an SDK worker for this module's functions, per backend."""
    db = new_db_url(request.param, tmp_path_factory.mktemp("grpc-bad"))
    server = GrpcServer(db, port=0, lease_seconds=2.0).start()
    side = Sidecar(db, server)
    worker = sdk_worker(
        side.address, [reads_files, doubles, returns_bad, reports_bad], [list_files, double]
    )
    wait_for(lambda: server.dispatcher.streams, what="the SDK worker to connect")
    try:
        yield side
    finally:
        worker.stop()
        side.client.close()
        server.stop(grace=1)
        if request.param == "postgres":
            drop_postgres_schema(db)


@pytest.fixture
def stub(sidecar: Sidecar) -> Iterator[Any]:
    with grpc.insecure_channel(sidecar.address) as channel:
        yield stubs.TaskHubSidecarServiceStub(channel)


def test_an_sdk_value_that_is_not_json_text_fails_only_its_own_work(sidecar: Sidecar) -> None:
    bad = {
        o.__name__: sidecar.client.schedule_new_orchestration(o)
        for o in (reads_files, returns_bad, reports_bad)
    }
    good = [sidecar.client.schedule_new_orchestration(doubles, input=i) for i in range(4)]
    for i, iid in enumerate(good):
        state = sidecar.client.wait_for_orchestration_completion(iid, timeout=30)
        assert state is not None and state.runtime_status == S.COMPLETED
        assert state.serialized_output == str(4 * i)
    for name, iid in bad.items():
        st = sidecar.tenuto.wait(iid, timeout=30)
        assert st.runtime_status is Status.FAILED, (name, st)
        assert st.failure is not None and "not valid JSON text" in st.failure.message, name
        assert "lone surrogate" in st.failure.message
    activity = sidecar.tenuto.status(bad["reads_files"]).failure
    assert activity is not None and "the output of activity 'list_files'" in activity.message
    output = sidecar.tenuto.status(bad["returns_bad"]).failure
    assert output is not None and "['file']" in output.message
    custom = sidecar.tenuto.status(bad["reports_bad"]).failure
    assert custom is not None and "custom status" in custom.message


def _code(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details() or ""


def test_a_client_call_carrying_a_bad_value_is_refused_before_writing(
    sidecar: Sidecar, stub: Any
) -> None:
    before = len(sidecar.tenuto.query(limit=1000).items)
    for text, says in [
        ("[" * 150 + "]" * 150, "more than 100 levels"),
        ("[" * 100_000 + "]" * 100_000, "more than 100 levels"),
        ('{"name": "\\udcff"}', "lone surrogate"),
        ("1" * 5000, "more than 4300 digits"),
    ]:
        code, details = _code(
            lambda t=text: stub.StartInstance(
                pb.CreateInstanceRequest(
                    name="doubles", instanceId="g-bad", input=wrappers_pb2.StringValue(value=t)
                )
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (text[:20], details)
        assert says in details
    assert len(sidecar.tenuto.query(limit=1000).items) == before

    iid = sidecar.tenuto.start("doubles", 1, instance_id="g-paused")
    sidecar.tenuto.pause(iid)
    code, details = _code(
        lambda: stub.RaiseEvent(
            pb.RaiseEventRequest(
                instanceId=iid, name="go", input=wrappers_pb2.StringValue(value='"\\ud800"')
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "lone surrogate" in details
    assert "EventRaised" not in [e.type for e in sidecar.tenuto.history(iid)]


def test_an_overlong_id_is_invalid_argument_without_echoing_it(sidecar: Sidecar, stub: Any) -> None:
    long_id = "x" * 10_000
    code, details = _code(
        lambda: stub.StartInstance(pb.CreateInstanceRequest(name="doubles", instanceId=long_id))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid instance id" in details and "10000 characters" in details
    assert len(details) < 1000
    code, details = _code(
        lambda: stub.RaiseEvent(pb.RaiseEventRequest(instanceId=long_id, name="go"))
    )
    assert code == grpc.StatusCode.NOT_FOUND and len(details) < 1000
    assert not stub.GetInstance(pb.GetInstanceRequest(instanceId=long_id)).exists
