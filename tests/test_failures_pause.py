"""Failures that pause (``RetryPolicy(on_exhausted="pause")``), with real worker
processes: the instance pauses with the error instead of failing; resuming runs the
failed call again with a fresh attempt budget (what succeeded ran once), or hands the
failure to the code (``deliver_failure``)."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

import tenuto
from tenuto import Status
from test_changing_code import Workers, _types
from test_cli import run_cli

from helpers import wait_for

PAID = {"reserved": "reserved book", "charged": "charged book", "shipped": "shipped book"}


@pytest.fixture
def workers(db_url, tmp_path):
    w = Workers(db_url, tmp_path)
    yield w
    w.stop()


def _paused_by_failure(client: tenuto.Client, iid: str, pauses: int = 1) -> tenuto.InstanceStatus:
    def paused() -> tenuto.InstanceStatus | None:
        st = client.status(iid)
        suspended = [e for e in client.history(iid) if e.type == "ExecutionSuspended"]
        assert st.runtime_status is not Status.FAILED, st.failure
        return st if st.runtime_status is Status.PAUSED and len(suspended) == pauses else None

    return wait_for(paused, timeout=30, what="the pause on failure")


def _start_failing(client, workers, iid: str) -> tenuto.InstanceStatus:
    workers.fail_flag.touch()
    workers.start("orders_pay")
    client.start("pay", "book", instance_id=iid)
    return _paused_by_failure(client, iid)


def test_a_failure_pauses_and_a_resume_runs_the_call_again(client, workers):
    st = _start_failing(client, workers, "pay-1")
    assert st.pause is not None and st.pause.source == "failure" and st.pause.by == "tenuto"
    assert st.pause.reason == (
        "activity 'charge' failed 2 times: ConnectionError: payment service down (flag fail)"
    )
    history = client.history("pay-1")
    assert "TaskFailed" not in [e.type for e in history]  # the code never saw it
    failed = history[-1].data["failed"]
    assert failed["activity"] == "charge" and failed["attempts"] == 2
    assert failed["failure"]["type"] == "ConnectionError"
    assert workers.ran("charge book") == 2

    # Still failing: a resume runs it again with a fresh budget, and it pauses again.
    assert client.resume("pay-1", "one more try")
    _paused_by_failure(client, "pay-1", pauses=2)
    assert workers.ran("charge book") == 4

    workers.fail_flag.unlink()  # the payment service is back
    assert client.resume("pay-1", "payments are back")
    st = client.wait("pay-1", timeout=30)
    assert st.runtime_status is Status.COMPLETED, st.failure
    assert st.output == PAID
    assert workers.ran("charge book") == 5
    assert workers.ran("reserve book") == 1 and workers.ran("ship book") == 1


def test_deliver_failure_runs_the_code_s_error_handling(client, workers):
    _start_failing(client, workers, "pay-2")
    assert client.resume("pay-2", "give up", deliver_failure=True)
    st = client.wait("pay-2", timeout=30)
    assert st.runtime_status is Status.COMPLETED, st.failure
    assert st.output == {
        "reserved": "reserved book",
        "charge_failed": "payment service down (flag fail)",
    }
    assert workers.ran("charge book") == 2 and workers.ran("ship book") == 0
    history = client.history("pay-2")
    resumed = [e for e in history if e.type == "ExecutionResumed"]
    assert resumed[-1].data["deliver_failure"] is True
    assert [e.data["attempts"] for e in history if e.type == "TaskFailed"] == [2]


def test_the_cli_resumes_and_delivers_the_failure(client, workers, db_url):
    _start_failing(client, workers, "pay-3")
    shown = run_cli("status", "pay-3", "--db", db_url)
    assert shown.returncode == 0, shown.stderr
    assert "tenuto (a call failed its last attempt)" in shown.stdout
    assert "payment service down" in shown.stdout
    assert "resume --deliver-failure" in shown.stdout
    resumed = run_cli("resume", "pay-3", "--deliver-failure", "--db", db_url)
    assert resumed.returncode == 0, resumed.stderr
    st = client.wait("pay-3", timeout=30)
    assert st.output["charge_failed"] == "payment service down (flag fail)"
    timeline = " ".join(run_cli("history", "pay-3", "--db", db_url).stdout.split())
    assert "paused by tenuto, a call having failed its last attempt" in timeline
    assert "the failure delivered to the code" in timeline

    refused = run_cli("resume", "--all", "--deliver-failure", "--db", db_url)
    assert refused.returncode == 2
    assert "--deliver-failure resumes one instance" in refused.stderr


pausing = tenuto.App(on_exhausted="pause")
broken = {"fetch": True}


@pausing.activity
def fetch(x: int) -> int:
    if broken["fetch"]:
        raise TimeoutError("the upstream service timed out")
    return x * 10


@pausing.orchestrator
def fetches(ctx, x):
    return (yield ctx.call_activity(fetch, x))


def test_the_app_default_pauses_calls_without_a_policy(client, start_worker, caplog):
    caplog.set_level(logging.INFO, logger="tenuto")
    broken["fetch"] = True
    start_worker(pausing)
    iid = client.start(fetches, 4)
    st = _paused_by_failure(client, iid)
    assert st.pause is not None and st.pause.reason == (
        "activity 'fetch' failed once: TimeoutError: the upstream service timed out"
    )
    # Someone must act: the tracking log says so as a warning.
    paused = wait_for(
        lambda: [r for r in caplog.records if getattr(r, "tenuto", {}).get("event") == "paused"]
    )
    assert paused[0].levelno == logging.WARNING and paused[0].tenuto["source"] == "failure"
    broken["fetch"] = False
    client.resume(iid)
    st = client.wait(iid, timeout=30)
    assert st.runtime_status is Status.COMPLETED and st.output == 40


# -- sub-orchestrations -------------------------------------------------------------------

families = tenuto.App()
child_bug = {"on": True}
calls: list[str] = []


@families.activity
def prepare(x: int) -> int:
    calls.append(f"prepare {x}")
    return x


@families.activity
def risky(x: int) -> int:
    calls.append(f"risky {x}")
    if child_bug["on"]:
        raise ValueError("a bug in the child")
    return x * 2


@families.orchestrator
def child(ctx, x):
    return (yield ctx.call_activity(risky, x))


@families.orchestrator
def parent(ctx, x):
    prepared = yield ctx.call_activity(prepare, x)
    try:
        return (yield ctx.call_sub_orchestrator(child, prepared, on_exhausted="pause"))
    except tenuto.SubOrchestrationFailed as error:
        return f"handled: {error.failure.message}"


def _parent_paused(client, start_worker, iid: str) -> tenuto.InstanceStatus:
    child_bug["on"] = True
    calls.clear()
    start_worker(families)
    client.start(parent, 3, instance_id=iid)
    st = _paused_by_failure(client, iid)
    assert client.status(f"{iid}:1").runtime_status is Status.FAILED
    return st


def test_a_failed_sub_orchestration_pauses_its_parent_and_a_resume_rewinds_it(client, start_worker):
    st = _parent_paused(client, start_worker, "family-1")
    assert st.pause is not None and st.pause.source == "failure"
    assert st.pause.reason == (
        "sub-orchestration 'child' (family-1:1) failed: tenuto.errors.ActivityFailed: "
        "activity 'risky' failed: ValueError: a bug in the child"
    )
    assert "SubOrchestrationInstanceFailed" not in _types(client.history("family-1"))

    child_bug["on"] = False
    assert client.resume("family-1", "child fixed")
    st = client.wait("family-1", timeout=30)
    assert st.runtime_status is Status.COMPLETED and st.output == 6
    assert calls == ["prepare 3", "risky 3", "risky 3"]  # prepare ran once
    assert client.status("family-1:1").runtime_status is Status.COMPLETED


def test_a_failed_sub_orchestration_delivered_to_the_parent(client, start_worker):
    _parent_paused(client, start_worker, "family-2")
    assert client.resume("family-2", deliver_failure=True)
    st = client.wait("family-2", timeout=30)
    assert st.runtime_status is Status.COMPLETED
    assert st.output.startswith("handled: ") and "a bug in the child" in st.output
    assert calls == ["prepare 3", "risky 3"]


def test_deliver_failure_is_refused_for_another_pause(client, start_worker, http_server, db_url):
    child_bug["on"] = False
    iid = client.start(parent, 1)
    # Paused before a worker runs it: a quick instance could otherwise finish first.
    client.pause(iid, "look at it")
    start_worker(families)
    with pytest.raises(tenuto.ValidationError, match="was not paused by a failed call"):
        client.resume(iid, deliver_failure=True)
    st = client.status(iid)
    assert st.runtime_status is Status.PAUSED and st.pause.source == "client"  # unchanged
    server = http_server()
    r = httpx.post(
        f"{server.url}/api/instances/{iid}/resume", json={"deliver_failure": True}, timeout=30
    )
    assert r.status_code == 422 and "no failure to deliver" in r.json()["message"]
    refused = run_cli("resume", iid, "--deliver-failure", "--db", db_url)
    assert refused.returncode == 1 and "no failure to deliver" in refused.stderr
    assert client.resume(iid)
    assert client.wait(iid, timeout=30).output == 2


def test_the_async_client_delivers_the_failure_and_restarts_with_a_reason(
    client, start_worker, db_url
):
    _parent_paused(client, start_worker, "family-async")

    async def main() -> str:
        async with tenuto.AsyncClient(db_url, actor="dana") as ac:
            assert await ac.resume("family-async", deliver_failure=True)
            await ac.wait("family-async", timeout=30)
            return await ac.restart("family-async", True, reason="try the child again")

    again = asyncio.run(main())
    first = client.history(again)[0]
    assert first.type == "ExecutionRestarted"
    assert (first.data["reason"], first.data["by"]) == ("try the child again", "dana")
    assert client.status("family-async").output.startswith("handled: ")
