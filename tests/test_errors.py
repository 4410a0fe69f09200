"""Errors a user can act on, with nothing written where the call fails."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import pytest

import tenuto
from tenuto import Status

from helpers import settle, wait_for

app = tenuto.App()
code_version = {"v": 1}


@app.activity
def echo(x: object) -> object:
    return x


@app.activity
def returns_a_set(_: object) -> object:
    return {1, 2}


@app.activity
def always_fails(_: object) -> None:
    raise KeyError("missing-key")


@app.orchestrator
def raises(ctx, _):
    yield ctx.call_activity(echo, 1)
    raise ZeroDivisionError("the orchestrator divided by zero")


@app.orchestrator
def returns_non_json(ctx, _):
    yield ctx.call_activity(echo, 1)
    return datetime(2030, 1, 1)


@app.orchestrator
def activity_returns_non_json(ctx, _):
    return (yield ctx.call_activity(returns_a_set, None))


@app.orchestrator
def unhandled_activity_failure(ctx, _):
    return (yield ctx.call_activity(always_fails, None))


@app.orchestrator
def calls_unknown_activity(ctx, _):
    try:
        yield ctx.call_activity("no_such_activity", 1)
    except tenuto.UnknownActivity as exc:
        return str(exc)


@app.orchestrator
def passes_non_json_to_activity(ctx, _):
    try:
        yield ctx.call_activity(echo, object())
    except TypeError as exc:
        return str(exc)


@app.orchestrator
def awaits_asyncio(ctx, _):
    import asyncio

    yield asyncio.sleep(0)


@app.orchestrator(on_nondeterminism="fail")
def changes_between_replays(ctx, _):
    name = "echo" if code_version["v"] == 1 else "returns_a_set"
    yield ctx.call_activity(name, "first")
    yield ctx.wait_for_event("continue")
    return "done"


@app.orchestrator
def waits(ctx, _):
    return (yield ctx.wait_for_event("go"))


def _count(client: tenuto.Client) -> int:
    return len(client.query(limit=1000).items)


def test_non_json_input_is_a_type_error_naming_the_type(client):
    with pytest.raises(TypeError, match="datetime"):
        client.start(waits, {"when": datetime.now(UTC)})
    with pytest.raises(TypeError, match="not valid JSON"):
        client.start(waits, float("nan"))
    assert _count(client) == 0


def test_non_json_event_data_is_refused_and_nothing_is_queued(client, start_worker):
    start_worker(app)
    iid = client.start(waits, None)
    with pytest.raises(TypeError, match="set"):
        client.raise_event(iid, "go", {1, 2})
    client.raise_event(iid, "go", "fine")
    assert client.wait(iid, timeout=10).output == "fine"


def test_non_json_orchestrator_output_fails_the_instance(client, start_worker):
    start_worker(app)
    st = client.wait(client.start(returns_non_json, None), timeout=10)
    assert st.runtime_status is Status.FAILED
    assert st.failure is not None and st.failure.type == "TypeError"
    assert "datetime" in st.failure.message


def test_non_json_activity_output_fails_the_activity(client, start_worker):
    start_worker(app)
    st = client.wait(client.start(activity_returns_non_json, None), timeout=10)
    assert st.runtime_status is Status.FAILED
    assert st.failure is not None and st.failure.type == "tenuto.errors.ActivityFailed"
    assert "returns_a_set" in st.failure.message and "set" in st.failure.message


def test_non_json_activity_input_raises_in_the_orchestrator(client, start_worker):
    start_worker(app)
    out = client.wait(client.start(passes_non_json_to_activity, None), timeout=10).output
    assert "input of activity 'echo'" in out and "object" in out


def test_unknown_orchestrator_is_refused_by_a_client_with_the_app(db_url):
    with tenuto.Client(db_url, app=app) as c:
        with pytest.raises(tenuto.UnknownOrchestrator, match=r"'nope'.*known orchestrators"):
            c.start("nope")
        assert _count(c) == 0


def test_unknown_orchestrator_is_refused_once_a_worker_registered_names(client, start_worker):
    start_worker(app)
    with pytest.raises(tenuto.UnknownOrchestrator, match="waits"):
        client.start("nope")
    assert _count(client) == 0


def test_unknown_activity_raises_in_the_orchestrator(client, start_worker):
    start_worker(app)
    out = client.wait(client.start(calls_unknown_activity, None), timeout=10).output
    assert "no_such_activity" in out and "echo" in out


def test_duplicate_instance_id(client):
    client.start(waits, 1, instance_id="only-once")
    with pytest.raises(tenuto.InstanceExists, match="only-once"):
        client.start(waits, 2, instance_id="only-once")
    assert client.status("only-once").input == 1


@pytest.mark.parametrize("bad", ["", "a/b", "a?b", "tab\there", " lead", "x" * 300, 42])
def test_invalid_instance_ids(client, bad):
    with pytest.raises((ValueError, TypeError), match="instance id"):
        client.start(waits, None, instance_id=bad)
    assert _count(client) == 0


def test_orchestrator_exception_fails_the_instance_with_details(client, start_worker):
    start_worker(app)
    st = client.wait(client.start(raises, None), timeout=10)
    assert st.runtime_status is Status.FAILED
    assert st.failure is not None
    assert st.failure.type == "ZeroDivisionError"
    assert st.failure.message == "the orchestrator divided by zero"
    assert st.failure.traceback is not None and "in raises" in st.failure.traceback
    last = client.history(st.instance_id)[-1]
    assert last.type == "ExecutionCompleted" and last.data["status"] == "FAILED"


def test_unhandled_activity_failure_fails_the_orchestration(client, start_worker):
    start_worker(app)
    st = client.wait(client.start(unhandled_activity_failure, None), timeout=10)
    assert st.runtime_status is Status.FAILED
    assert st.failure is not None
    assert "activity 'always_fails' failed" in st.failure.message
    assert "KeyError" in st.failure.message
    assert "missing-key" in (st.failure.traceback or "")


def test_awaiting_something_else_than_a_task_is_reported(client, start_worker):
    start_worker(app)
    st = client.wait(client.start(awaits_asyncio, None), timeout=10)
    assert st.runtime_status is Status.FAILED
    assert st.failure is not None and "only wait on tasks from ctx" in st.failure.message


def test_code_changed_between_replays_fails_with_non_determinism(client, start_worker):
    worker = start_worker(app, cache_size=0)  # every step replays from history
    iid = client.start(changes_between_replays, None)
    wait_for(lambda: "TaskCompleted" in [e.type for e in client.history(iid)])
    settle(worker)
    code_version["v"] = 2  # "deploy" new code under the running instance
    try:
        client.raise_event(iid, "continue")
        st = client.wait(iid, timeout=10)
    finally:
        code_version["v"] = 1
    assert st.runtime_status is Status.FAILED
    assert st.failure is not None
    assert st.failure.type == "tenuto.errors.NonDeterminismError"
    assert "step 0" in st.failure.message
    assert "'echo'" in st.failure.message and "'returns_a_set'" in st.failure.message


def test_invalid_query_arguments(client):
    with pytest.raises(ValueError, match="unknown status 'SLEEPING'"):
        client.query(status="SLEEPING")
    with pytest.raises(ValueError, match="limit"):
        client.query(limit=0)
    with pytest.raises(tenuto.InvalidCursor, match="next_cursor"):
        client.query(cursor="not-a-cursor")


def test_purge_of_a_live_instance_is_refused(client):
    iid = client.start(waits, None)
    with pytest.raises(tenuto.InstanceNotFinished, match="terminate it first"):
        client.purge(iid)
    assert client.status(iid).runtime_status is Status.PENDING


def test_raise_event_on_finished_or_unknown_instances(client, start_worker):
    start_worker(app)
    iid = client.start(waits, None)
    client.raise_event(iid, "go", 1)
    client.wait(iid, timeout=10)
    with pytest.raises(tenuto.InstanceFinished):
        client.raise_event(iid, "go", 2)
    with pytest.raises(tenuto.InstanceNotFound):
        client.raise_event("missing", "go", 2)


def test_bad_database_urls():
    with pytest.raises(ValueError, match="unsupported database URL"):
        tenuto.Client("mysql://x")
    with pytest.raises(ValueError, match="SQLite file"):
        tenuto.Client("sqlite:///:memory:")
    with pytest.raises(ValueError, match="unknown SQLite URL option"):
        tenuto.Client("sqlite:///x.db?journal=off")


stuck = threading.Event()


@app.orchestrator
def blocks_in_its_step(ctx, _):
    yield ctx.call_activity(echo, 1)
    stuck.wait(30)  # orchestrator code that blocks instead of yielding
    return "unblocked"


def test_a_step_that_does_not_yield_is_reported_by_the_watchdog(client, start_worker, caplog):
    caplog.set_level(logging.WARNING, logger="tenuto.worker")
    stuck.clear()
    start_worker(app, step_warning=0.2)
    iid = client.start(blocks_in_its_step, None, instance_id="stuck-1")
    try:
        record = wait_for(
            lambda: next((r for r in caplog.records if "without yielding" in r.getMessage()), None)
        )
    finally:
        stuck.set()
    message = record.getMessage()
    assert "stuck-1" in message and "'blocks_in_its_step'" in message, message
    assert client.wait(iid, timeout=10).output == "unblocked"
    assert sum("without yielding" in r.getMessage() for r in caplog.records) == 1
