"""The caller's mistakes and tenuto's own, told apart at every entry point.

A value tenuto refuses is a :class:`tenuto.ValidationError` (a ``ValueError``;
:class:`tenuto.InvalidType` is also a ``TypeError``): REST answers 422, the Durable
Functions routes 400, gRPC ``INVALID_ARGUMENT``, the command line exit code 1. Any other
exception is a bug in tenuto, and must not be reported as the caller's fault, even when
it is a plain ``ValueError`` or ``TypeError``: REST and the Durable Functions routes
answer 500, gRPC ``INTERNAL``, the command line exits 70 with the traceback.

The bug is real code that raises: ``tenuto._control.pause`` replaced, in the process
that serves the request, by a function that raises (everything else is the real server
on loopback, the real database and, for the command line, a real subprocess).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import tenuto
from tenuto import _control

from helpers import RunningServer


def _bug(kind: type[Exception]) -> Any:
    def pause(*args: Any, **kwargs: Any) -> list[str]:
        raise kind("an internal fault, not the caller's")

    return pause


BUGS = [ValueError, TypeError]


# -- the Python API -------------------------------------------------------------------------


def test_refused_values_are_validation_errors_and_stay_value_and_type_errors(client):
    iid = client.start("anything", None)
    with pytest.raises(tenuto.ValidationError, match="limit must be"):
        client.query(limit=0)
    with pytest.raises(tenuto.InvalidType, match="a reason must be a string") as typed:
        client.pause(iid, 5)  # type: ignore[arg-type]
    assert isinstance(typed.value, TypeError) and isinstance(typed.value, ValueError)
    with pytest.raises(tenuto.ValidationError, match="invalid instance id"):
        client.start("anything", None, instance_id="team/backup")
    with pytest.raises(tenuto.ValidationError, match="unknown status 'sleeping'"):
        client.query(status="sleeping")
    with pytest.raises(tenuto.ValidationError, match="invalid cursor"):
        client.query(cursor="nope")
    for refused in (tenuto.InvalidJSON, tenuto.InvalidCursor, tenuto.InvalidType):
        assert issubclass(refused, tenuto.ValidationError)
    assert issubclass(tenuto.ValidationError, ValueError)
    assert issubclass(tenuto.ValidationError, tenuto.TenutoError)


def test_orchestrator_code_still_sees_plain_value_and_type_errors(client, start_worker):
    app = tenuto.App()

    @app.orchestrator
    def names_a_bad_child(ctx, _):
        errors = []
        for call in (
            lambda: ctx.call_sub_orchestrator(names_a_bad_child, instance_id="a/b"),
            lambda: ctx.send_event("a/b", "go"),
            lambda: ctx.send_event("ok", "bad\nname"),
            lambda: ctx.call_activity(object()),
        ):
            try:
                call()
            except Exception as exc:
                errors.append(type(exc).__name__)
        return errors
        yield  # a generator orchestrator

    start_worker(app)
    st = client.wait(client.start(names_a_bad_child, None), timeout=30)
    assert st.output == ["ValueError", "ValueError", "ValueError", "TypeError"]


# -- REST and the Durable Functions routes --------------------------------------------------


@pytest.fixture
def server(http_server) -> Iterator[RunningServer]:
    yield http_server()


@pytest.mark.parametrize("bug", BUGS, ids=lambda k: k.__name__)
def test_rest_answers_422_for_a_refused_value_and_500_for_a_bug(server, monkeypatch, bug):
    iid = server.client.start("anything", None)
    with httpx.Client(base_url=server.url) as api:
        r = api.post(f"/api/instances/{iid}/pause", json={"reason": "nul \x00 inside"})
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "invalid" and "NUL" in r.json()["message"]
        r = api.get("/api/instances", params={"name": "two\nlines"})  # a Filter refuses it
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "invalid" and "orchestrator name" in r.json()["message"]

        monkeypatch.setattr(_control, "pause", _bug(bug))
        r = api.post(f"/api/instances/{iid}/pause", json={"reason": "fine"})
        assert r.status_code == 500, r.text
        assert r.json()["error"] == "internal"
        assert "a bug in tenuto" in r.json()["message"]
        assert "internal fault" not in r.text  # the details are in the server log
        r = api.post("/api/bulk/pause", json={"name": "anything"})
        assert r.status_code == 500, r.text
    assert server.client.status(iid).runtime_status is tenuto.Status.PENDING


@pytest.mark.parametrize("bug", BUGS, ids=lambda k: k.__name__)
def test_durable_routes_answer_400_for_a_refused_value_and_500_for_a_bug(server, monkeypatch, bug):
    iid = server.client.start("anything", None)
    suspend = f"/runtime/webhooks/durabletask/instances/{iid}/suspend"
    with httpx.Client(base_url=server.url) as api:
        r = api.post(suspend, params={"reason": "nul \x00 inside"})
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "invalid" and "NUL" in r.json()["message"]

        monkeypatch.setattr(_control, "pause", _bug(bug))
        r = api.post(suspend, params={"reason": "fine"})
        assert r.status_code == 500, r.text
        assert r.json()["error"] == "internal"
    assert server.client.status(iid).runtime_status is tenuto.Status.PENDING


# -- gRPC -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bug", BUGS, ids=lambda k: k.__name__)
def test_grpc_answers_invalid_argument_for_a_refused_value_and_internal_for_a_bug(
    db_url, monkeypatch, bug
):
    grpc = pytest.importorskip("grpc")
    pb = pytest.importorskip("durabletask.internal.orchestrator_service_pb2")
    stubs = pytest.importorskip("durabletask.internal.orchestrator_service_pb2_grpc")
    from tenuto.grpc import GrpcServer

    server = GrpcServer(db_url, port=0).start()
    try:
        iid = tenuto.Client(store=server.store).start("anything", None)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = stubs.TaskHubSidecarServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.StartInstance(pb.CreateInstanceRequest(name="anything", instanceId="a/b"))
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "invalid instance id" in (refused.value.details() or "")

            monkeypatch.setattr(_control, "pause", _bug(bug))
            with pytest.raises(grpc.RpcError) as failed:
                stub.SuspendInstance(pb.SuspendRequest(instanceId=iid))
            assert failed.value.code() == grpc.StatusCode.INTERNAL, failed.value.details()
            assert "a bug in tenuto" in (failed.value.details() or "")
    finally:
        server.stop(grace=1)


# -- the command line ------------------------------------------------------------------------

#: ``tenuto`` with ``_control.pause`` raising ``sys.argv[1]``: an internal fault.
_BUGGY_CLI = """
import sys
from tenuto import _control
from tenuto.cli import main

kind = {"ValueError": ValueError, "TypeError": TypeError}[sys.argv.pop(1)]


def pause(*args, **kwargs):
    raise kind("an internal fault, not the caller's")


_control.pause = pause
main(prog_name="tenuto")
"""


@pytest.mark.parametrize("bug", BUGS, ids=lambda k: k.__name__)
def test_the_cli_exits_1_for_a_refused_value_and_70_for_a_bug(db_url, tmp_path, bug):
    runner = tmp_path / "buggy_tenuto.py"
    runner.write_text(_BUGGY_CLI)
    iid = tenuto.Client(db_url).start("anything", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(runner), bug.__name__, *args, "--db", db_url],
            capture_output=True,
            text=True,
            timeout=60,
        )

    refused = run("start", "anything", "--id", "team/backup")
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.startswith("Error: invalid instance id")
    assert "Traceback" not in refused.stderr and refused.stderr.count("\n") == 1

    failed = run("pause", iid)
    assert failed.returncode == 70, failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: internal error (a bug in tenuto"), failed.stderr
    assert f"{bug.__name__}: an internal fault" in last
    assert "Traceback" in failed.stderr  # what a bug report needs
