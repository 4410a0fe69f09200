"""OpenTelemetry tracing: spans per step and per activity attempt, pause intervals as
span events, the client's trace context carried to activities and sub-orchestrations,
across processes and on the Durable Task gRPC path. Checked with the SDK's in-memory
exporter (and a file exporter in a worker subprocess)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import wait_for

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

import tenuto
from apps.traced import record
from tenuto import tracing
from tenuto.store.base import ActivityRow

app = tenuto.App()
flaky_calls: list[int] = []
#: The current span's id as seen by activity code.
current: list[str] = []


@app.activity(retry=tenuto.RetryPolicy(max_attempts=2, first_delay=0.01))
def flaky(x: int) -> int:
    flaky_calls.append(x)
    if len(flaky_calls) % 2 == 1:
        raise ValueError("first attempt fails")
    current.append(f"{trace.get_current_span().get_span_context().span_id:016x}")
    return x + 1


@app.orchestrator
def child(ctx: tenuto.OrchestrationContext, x: int) -> Any:
    return (yield ctx.call_activity(flaky, x))


@app.orchestrator
def parent(ctx: tenuto.OrchestrationContext, x: int) -> Any:
    a = yield ctx.call_sub_orchestrator(child, x)
    go = yield ctx.wait_for_event("go")
    return a + go


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    yield exporter
    tracing.disable()


def _records(exporter: InMemorySpanExporter) -> list[dict[str, Any]]:
    return [record(s) for s in exporter.get_finished_spans()]


def test_spans_from_the_client_call_to_activities_and_children(
    client: tenuto.Client, start_worker: Any, spans: InMemorySpanExporter
) -> None:
    start_worker(app)
    request = tracing._tracer.start_span("request")  # the caller's own span
    with trace.use_span(request, end_on_exit=True):
        iid = client.start(parent, 1, instance_id="traced")
    wait_for(lambda: client.status(iid).runtime_status is tenuto.Status.RUNNING)
    wait_for(
        lambda: any(e.type == "SubOrchestrationInstanceCompleted" for e in client.history(iid))
    )
    client.pause(iid, "a look", by="ops")
    client.resume(iid, "done looking")
    client.raise_event(iid, "go", 10)
    assert client.wait(iid, timeout=30).output == 12

    got = _records(spans)
    by_id = {s["span_id"]: s for s in got}
    (req,) = [s for s in got if s["name"] == "request"]
    assert {s["trace_id"] for s in got} == {req["trace_id"]}  # one trace
    (create,) = [s for s in got if s["name"] == "create_orchestration:parent"]
    assert create["parent"] == req["span_id"]
    steps = [s for s in got if s["name"] == "orchestration:parent"]
    assert steps and all(s["parent"] == create["span_id"] for s in steps)
    assert all(s["attributes"]["tenuto.instance_id"] == "traced" for s in steps)
    assert steps[-1]["attributes"]["tenuto.status"] == "COMPLETED"
    # The pause and the resume: events of the step that followed them.
    assert [s["events"] for s in steps if s["events"]] == [["paused", "resumed"]]
    # The child ran under the parent's step that created it.
    child_steps = [s for s in got if s["name"] == "orchestration:child"]
    assert child_steps and {by_id[s["parent"]]["name"] for s in child_steps} == {
        "orchestration:parent"
    }
    # One span per activity attempt, under the child's step that scheduled it.
    attempts = [s for s in got if s["name"] == "activity:flaky"]
    assert [s["attributes"]["tenuto.attempt"] for s in attempts] == [1, 2]
    assert {by_id[s["parent"]]["name"] for s in attempts} == {"orchestration:child"}
    assert attempts[0]["events"] == ["exception"]
    assert current[-1] == attempts[1]["span_id"]  # activity code runs in its span


def test_no_spans_and_no_context_when_tracing_is_off(
    client: tenuto.Client, start_worker: Any
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_parent = tracing.start_span("x")
    assert trace_parent is None and not tracing.enabled()
    start_worker(app)
    iid = client.start(child, 1)
    client.wait(iid, timeout=30)
    assert exporter.get_finished_spans() == ()


def test_the_trace_crosses_processes(
    client: tenuto.Client, db_url: str, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    out = tmp_path / "spans.jsonl"
    tests = Path(__file__).parent
    worker = subprocess.Popen(
        [sys.executable, "-m", "apps.traced", db_url, str(out)],
        cwd=tests,
        env={**os.environ, "PYTHONPATH": str(tests)},
    )
    try:
        iid = client.start("flow", 41)
        assert client.wait(iid, timeout=60).output == 42
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    (create,) = _records(spans)
    theirs = [json.loads(line) for line in out.read_text().splitlines()]
    steps = [s for s in theirs if s["name"] == "orchestration:flow"]
    (act,) = [s for s in theirs if s["name"] == "activity:inc"]
    assert {s["trace_id"] for s in theirs} == {create["trace_id"]}
    assert {s["parent"] for s in steps} == {create["span_id"]}
    assert act["parent"] in {s["span_id"] for s in steps}


def test_grpc_requests_carry_the_trace_context() -> None:
    pytest.importorskip("durabletask")
    from tenuto.grpc import convert
    from tenuto.grpc.dispatch import _activity_item
    from tenuto.store.base import InstanceRow

    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    row = ActivityRow(1, "i", "e", 3, "work", "1", None, 1, 0.0, "l", trace_parent=tp)
    assert _activity_item("t", row).activityRequest.parentTraceContext.traceParent == tp
    inst = InstanceRow("i", "flow", tenuto.Status.RUNNING, "e", trace_parent=tp)
    started = tenuto.history.Event("ExecutionStarted", 0.0, {"name": "flow", "input": None})
    (event,) = convert.history([started], inst, for_replay=True)
    assert event.executionStarted.parentTraceContext.traceParent == tp
    assert tracing.valid_traceparent("not a traceparent") is None
