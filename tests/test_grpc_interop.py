"""Durable Task interop to the letter: what durabletask-python's own end-to-end tests
expect of a backend, checked here with the real SDK worker and client on both backends
(``python -m bench.interop`` runs their suite itself; CI cannot download it).

Each test is one bug class their suite found: payloads re-encoded, the output of a
terminate lost, a retried sub-orchestration refused, events lost across continue-as-new,
chunked long timers never ending, ``ListInstanceIds`` keys, strict versions in work-item
filters, and queued activities starting after a suspend.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import grpc
import pytest

pytest.importorskip("durabletask")

import durabletask.internal.orchestrator_service_pb2 as pb
from durabletask import client as dc
from durabletask import task
from durabletask.worker import VersioningOptions, VersionMatchStrategy

import tenuto
from sdk_helpers import Sidecar, connected, open_sidecar

from helpers import wait_for

S = dc.OrchestrationStatus


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def side(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sidecar]:
    with open_sidecar(request.param, tmp_path_factory.mktemp("interop"), 2.0) as sidecar:
        yield sidecar


# -- payloads, byte for byte -------------------------------------------------------------

#: Text that tenuto's own encoder would write differently: spaces after separators,
#: escaped non-ASCII, keys in a non-sorted order, a float written as 1.0.
PAYLOAD = {"zeta": [1, 2.0, "é"], "alpha": {"n": None, "ok": True}}


def echo(ctx: task.ActivityContext, value: Any) -> Any:
    return {"echo": value}


def payloads(ctx: task.OrchestrationContext, value: Any) -> Any:
    ctx.set_custom_status({"phase": "echo", "value": value})
    echoed = yield ctx.call_activity(echo, input=value)
    event = yield ctx.wait_for_external_event("data")
    return [echoed, event]


def _history(side: Sidecar, iid: str) -> list[pb.HistoryEvent]:
    chunks = side.client._stub.StreamInstanceHistory(
        pb.StreamInstanceHistoryRequest(instanceId=iid, forWorkItemProcessing=True)
    )
    return [e for chunk in chunks for e in chunk.events]


def test_sdk_payloads_come_back_byte_for_byte(side: Sidecar) -> None:
    with connected(side, [payloads], [echo]):
        iid = side.client.schedule_new_orchestration(payloads, input=PAYLOAD)
        side.client.wait_for_orchestration_start(iid, timeout=10)
        wait_for(
            lambda: (s := side.client.get_orchestration_state(iid)) and s.serialized_custom_status,
            what="the custom status",
        )
        side.client.raise_orchestration_event(iid, "data", data=PAYLOAD)
        state = side.client.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and state.runtime_status == S.COMPLETED, state.failure_details
    # Exactly what the SDK serialized (its json.dumps), not tenuto's compact encoding.
    assert state.serialized_input == json.dumps(PAYLOAD)
    assert state.serialized_output == json.dumps([{"echo": PAYLOAD}, PAYLOAD])
    assert state.serialized_custom_status == json.dumps({"phase": "echo", "value": PAYLOAD})
    events = _history(side, iid)
    started = next(e.executionStarted for e in events if e.HasField("executionStarted"))
    assert started.input.value == json.dumps(PAYLOAD)
    scheduled = next(e.taskScheduled for e in events if e.HasField("taskScheduled"))
    assert scheduled.input.value == json.dumps(PAYLOAD)
    completed = next(e.taskCompleted for e in events if e.HasField("taskCompleted"))
    assert completed.result.value == json.dumps({"echo": PAYLOAD})
    raised = next(e.eventRaised for e in events if e.HasField("eventRaised"))
    assert raised.input.value == json.dumps(PAYLOAD)
    # tenuto's side decodes the same values.
    st = side.tenuto.status(iid)
    assert st.input == PAYLOAD and st.output == [{"echo": PAYLOAD}, PAYLOAD]
    assert st.custom_status == {"phase": "echo", "value": PAYLOAD}
    data = {e.type: e.data for e in side.tenuto.history(iid)}
    assert data["TaskCompleted"]["result"] == {"echo": PAYLOAD}
    assert data["EventRaised"]["data"] == PAYLOAD


def test_a_value_written_by_tenuto_reaches_sdk_code_unchanged(side: Sidecar) -> None:
    """The other direction: tenuto's client starts the instance and raises the event."""
    with connected(side, [payloads], [echo]):
        iid = side.tenuto.start("payloads", PAYLOAD)
        wait_for(
            lambda: side.tenuto.status(iid).custom_status is not None, what="the custom status"
        )
        side.tenuto.raise_event(iid, "data", [PAYLOAD])
        st = side.tenuto.wait(iid, timeout=30)
    assert st.runtime_status is tenuto.Status.COMPLETED, st.failure
    assert st.output == [{"echo": PAYLOAD}, [PAYLOAD]]
    sdk = side.client.get_orchestration_state(iid)
    assert sdk is not None and json.loads(sdk.serialized_output) == st.output


# -- terminate ---------------------------------------------------------------------------


def waits(ctx: task.OrchestrationContext, _: Any) -> Any:
    return (yield ctx.wait_for_external_event("never"))


def test_terminate_output_comes_back_as_the_output(side: Sidecar) -> None:
    with connected(side, [waits], []):
        iid = side.client.schedule_new_orchestration(waits)
        side.client.wait_for_orchestration_start(iid, timeout=10)
        side.client.terminate_orchestration(iid, output={"why": "obsolete", "by": ["ops"]})
        state = side.client.wait_for_orchestration_completion(iid, timeout=10)
    assert state is not None and state.runtime_status == S.TERMINATED
    assert state.serialized_output == json.dumps({"why": "obsolete", "by": ["ops"]})
    assert side.tenuto.status(iid).output == {"why": "obsolete", "by": ["ops"]}


# -- retried sub-orchestrations ----------------------------------------------------------

_attempts: dict[str, int] = {}


def shaky_child(ctx: task.OrchestrationContext, fails: int) -> Any:
    if not ctx.is_replaying:
        _attempts[ctx.instance_id] = _attempts.get(ctx.instance_id, 0) + 1
    if _attempts[ctx.instance_id] <= fails:
        raise RuntimeError(f"child attempt {_attempts[ctx.instance_id]} failed")
    return f"child ok after {_attempts[ctx.instance_id]}"
    yield  # a generator: the SDK replays it


def retrying_parent(ctx: task.OrchestrationContext, fails: int) -> Any:
    policy = task.RetryPolicy(
        first_retry_interval=timedelta(milliseconds=50), max_number_of_attempts=3
    )
    return (yield ctx.call_sub_orchestrator(shaky_child, input=fails, retry_policy=policy))


def test_a_retried_sub_orchestration_runs_again(side: Sidecar) -> None:
    """The SDK retries a failed child under the same id (``parent:0001``): the failed
    child is replaced instead of the retry failing with 'already exists'."""
    with connected(side, [retrying_parent, shaky_child], []):
        ok = side.run(retrying_parent, 2)
        failed = side.run(retrying_parent, 5)
    assert ok.runtime_status == S.COMPLETED, ok.failure_details
    assert ok.serialized_output == json.dumps("child ok after 3")
    assert failed.runtime_status == S.FAILED
    assert "child attempt 3 failed" in failed.failure_details.message
    assert "already exists" not in failed.failure_details.message


def test_a_child_id_taken_by_a_stranger_still_fails_the_call(side: Sidecar) -> None:
    """Replacing is only for the parent's own finished child: an id taken by another
    instance is not adopted."""
    stranger = side.new_id()

    def adopting(ctx: task.OrchestrationContext, child_id: str) -> Any:
        return (yield ctx.call_sub_orchestrator(shaky_child, input=0, instance_id=child_id))

    with connected(side, [adopting, shaky_child], []):
        side.run(shaky_child, 0, timeout=30)  # something finished under another id
        first = side.client.schedule_new_orchestration(shaky_child, input=0, instance_id=stranger)
        side.client.wait_for_orchestration_completion(first, timeout=30)
        state = side.run(adopting, stranger)
    assert state.runtime_status == S.FAILED
    assert "already exists" in state.failure_details.message


# -- continue-as-new ---------------------------------------------------------------------

gate = threading.Event()
holding = threading.Event()


def collector(ctx: task.OrchestrationContext, seen: list[Any]) -> Any:
    value = yield ctx.wait_for_external_event("item")
    if value == "hold" and not ctx.is_replaying:
        holding.set()
        gate.wait(30)  # the test raises more events while this step is in flight
    seen = [*seen, value]
    if len(seen) < 3:
        ctx.continue_as_new(seen, save_events=True)
        return None
    return seen


def test_continue_as_new_carries_every_event_in_order(side: Sidecar) -> None:
    """Events the step received but did not use are carried over (save_events), in the
    order raised."""
    with connected(side, [collector], []):
        iid = side.client.schedule_new_orchestration(collector, input=[])
        for n in (1, 2, 3, 4):
            side.client.raise_orchestration_event(iid, "item", data=n)
        state = side.client.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and state.runtime_status == S.COMPLETED, state.failure_details
    assert json.loads(state.serialized_output) == [1, 2, 3]
    assert state.serialized_input == json.dumps([1, 2])


def test_events_raised_while_a_continue_as_new_step_runs_reach_the_next_execution(
    side: Sidecar,
) -> None:
    gate.clear()
    holding.clear()
    with connected(side, [collector], []):
        iid = side.client.schedule_new_orchestration(collector, input=[])
        side.client.raise_orchestration_event(iid, "item", data="hold")
        assert holding.wait(10)
        side.client.raise_orchestration_event(iid, "item", data="second")
        side.client.raise_orchestration_event(iid, "item", data="third")
        gate.set()
        state = side.client.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and state.runtime_status == S.COMPLETED, state.failure_details
    assert json.loads(state.serialized_output) == ["hold", "second", "third"]


# -- timers ------------------------------------------------------------------------------


def long_timer(ctx: task.OrchestrationContext, seconds: float) -> Any:
    yield ctx.create_timer(timedelta(seconds=seconds))
    return "done"


def test_a_chunked_long_timer_ends(side: Sidecar) -> None:
    """The SDK splits a timer longer than ``maximum_timer_interval`` into chunks and
    compares each ``TimerFired.fireAt`` with the time it asked for: times must come back
    to the microsecond (a double rounded to nanoseconds came back early about every
    other time), or it creates one more chunk forever."""
    with connected(side, [long_timer], [], maximum_timer_interval=timedelta(seconds=0.5)):
        begin = time.monotonic()
        ids = [side.client.schedule_new_orchestration(long_timer, input=1.2) for _ in range(4)]
        states = [side.client.wait_for_orchestration_completion(i, timeout=20) for i in ids]
    assert time.monotonic() - begin >= 1.2
    for iid, state in zip(ids, states, strict=True):
        assert state is not None and state.runtime_status == S.COMPLETED, state
        assert state.serialized_output == json.dumps("done")
        events = _history(side, iid)
        created = {e.eventId: e.timerCreated.fireAt for e in events if e.HasField("timerCreated")}
        fired = {
            e.timerFired.timerId: e.timerFired.fireAt for e in events if e.HasField("timerFired")
        }
        assert len(created) == 3  # 0.5 + 0.5 + 0.2 s
        # Each timer fires at exactly the time it was created for, to the microsecond.
        for timer_id, fire_at in fired.items():
            assert fire_at.ToDatetime() == created[timer_id].ToDatetime()


# -- ListInstanceIds ---------------------------------------------------------------------


def test_list_instance_ids_key_names_the_last_instance(side: Sidecar) -> None:
    with connected(side, [long_timer], []):
        ids = [side.run(long_timer, 0).instance_id for _ in range(3)]
    listed: list[str] = []
    token = None
    while True:
        page = side.client.list_instance_ids(
            runtime_status=[S.COMPLETED], page_size=1, continuation_token=token
        )
        listed += page.items
        if page.continuation_token is None:
            break
        assert page.items[-1] in page.continuation_token
        token = page.continuation_token
    assert set(ids) <= set(listed) and len(listed) == len(set(listed))
    with pytest.raises(grpc.RpcError) as info:
        side.client.list_instance_ids(continuation_token="not a key")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# -- strict versions in work-item filters ------------------------------------------------


def plus_one(ctx: task.OrchestrationContext, n: int) -> Any:
    return n + 1
    yield  # a generator: the SDK replays it


def _strict(version: str) -> VersioningOptions:
    return VersioningOptions(version=version, match_strategy=VersionMatchStrategy.STRICT)


def test_an_instance_no_worker_may_serve_stays_pending(side: Sidecar) -> None:
    """A worker whose filters name versions (strict versioning) gets only instances of
    those versions; the others stay PENDING (not handed out and failed) until a worker
    of their version connects."""
    with connected(side, [plus_one], [], versioning=_strict("2.0")) as worker:
        stream = next(s for s in side.server.dispatcher.streams if s.versions)
        assert stream.versions == {"plus_one": ["2.0"]}
        old = side.client.schedule_new_orchestration(plus_one, input=1, version="1.0")
        bare = side.client.schedule_new_orchestration(plus_one, input=1)
        good = side.client.schedule_new_orchestration(plus_one, input=1, version="2.0")
        state = side.client.wait_for_orchestration_completion(good, timeout=30)
        assert state is not None and state.runtime_status == S.COMPLETED
        assert state.serialized_output == "2"
        seen = stream.claims
        wait_for(lambda: stream.claims >= seen + 3, what="more claims by the worker")
        for iid in (old, bare):
            st = side.client.get_orchestration_state(iid)
            assert st is not None and st.runtime_status == S.PENDING
        assert worker is not None
    with connected(side, [plus_one], [], versioning=_strict("1.0")):
        state = side.client.wait_for_orchestration_completion(old, timeout=30)
        assert state is not None and state.runtime_status == S.COMPLETED
        st = side.client.get_orchestration_state(bare)
        assert st is not None and st.runtime_status == S.PENDING
    side.client.terminate_orchestration(bare)


# -- suspend: nothing queued in an SDK worker starts afterwards (issue 22) ---------------

started: list[float] = []
_started_lock = threading.Lock()
release = threading.Event()


def slow(ctx: task.ActivityContext, n: int) -> int:
    with _started_lock:
        started.append(time.monotonic())
    release.wait(30)
    return n


def fan(ctx: task.OrchestrationContext, n: int) -> Any:
    return sum((yield task.when_all([ctx.call_activity(slow, input=i) for i in range(n)])))


def test_after_suspend_returns_no_queued_activity_starts(side: Sidecar) -> None:
    """The SDK advertises a concurrency of 100 per CPU but runs a few threads: had it
    been handed all 40 activities, those queued in it would start after the suspend."""
    started.clear()
    release.clear()
    with connected(side, [fan], [slow]):
        iid = side.client.schedule_new_orchestration(fan, input=40)
        holds = side.server.dispatcher.activities_per_worker
        wait_for(lambda: len(started) >= holds, timeout=30, what="the first activities")
        side.client.suspend_orchestration(iid, reason="incident")
        suspended_at = time.monotonic()
        release.set()
        # What was running finishes; its results are stored, nothing else starts.
        wait_for(
            lambda: not side.server.dispatcher._activities,
            what="the running activities to finish",
        )
        late = [t for t in started if t > suspended_at]
        assert late == [], f"{len(late)} activities started after the suspend returned"
        assert len(started) == holds
        st = side.client.get_orchestration_state(iid)
        assert st is not None and st.runtime_status == S.SUSPENDED
        side.client.resume_orchestration(iid)
        state = side.client.wait_for_orchestration_completion(iid, timeout=60)
    assert state is not None and state.runtime_status == S.COMPLETED
    assert state.serialized_output == str(sum(range(40)))
    assert len(started) == 40
