"""Every orchestration context operation, end to end against a real worker."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

import tenuto
from tenuto import RetryPolicy, Status

from helpers import wait_for

app = tenuto.App()
attempts: dict[str, int] = {}
attempt_times: dict[str, list[float]] = {}
_lock = threading.Lock()


@pytest.fixture(autouse=True)
def _fresh_state():
    attempts.clear()
    attempt_times.clear()


@app.activity
def flaky(spec: dict) -> str:
    """Fails ``spec['failures']`` times for key ``spec['key']``, then succeeds."""
    with _lock:
        n = attempts[spec["key"]] = attempts.get(spec["key"], 0) + 1
        attempt_times.setdefault(spec["key"], []).append(time.monotonic())
    if n <= spec["failures"]:
        raise RuntimeError(f"attempt {n} failed")
    return f"ok after {n}"


@app.activity
def double(x: int) -> int:
    return 2 * x


@app.activity
def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.orchestrator
def retrying(ctx, spec):
    policy = RetryPolicy(max_attempts=spec["max"], first_delay=0.05, backoff=2.0, max_delay=0.15)
    try:
        return (yield ctx.call_activity(flaky, spec, retry=policy))
    except tenuto.ActivityFailed as exc:
        return {"caught": exc.type, "message": exc.failure.message, "attempts": exc.attempts}


@app.orchestrator
def timer_flow(ctx, seconds):
    before = ctx.now()
    yield ctx.create_timer(timedelta(seconds=seconds))
    after = ctx.now()
    return (after - before).total_seconds()


@app.orchestrator
def timer_at_datetime(ctx, seconds):
    yield ctx.create_timer(ctx.now() + timedelta(seconds=seconds))
    return "fired"


@app.orchestrator
def event_flow(ctx, timeout):
    try:
        data = yield ctx.wait_for_event("approval", timeout=timeout)
        return {"approved": data}
    except tenuto.EventTimeout:
        return "timed out"


@app.orchestrator
def collect_events(ctx, n):
    got = []
    for _ in range(n):
        got.append((yield ctx.wait_for_event("item")))
    return got


@app.orchestrator
def fan_out(ctx, n):
    results = yield ctx.when_all([ctx.call_activity(double, i) for i in range(n)])
    return sum(results)


@app.orchestrator
def race(ctx, _):
    fast = ctx.call_activity(sleepy, 0.01)
    slow = ctx.create_timer(timedelta(seconds=30))
    winner = yield ctx.when_any([fast, slow])
    return "activity" if winner is fast else "timer"


@app.orchestrator
def child(ctx, x):
    return (yield ctx.call_activity(double, x))


@app.orchestrator
def failing_child(ctx, _):
    raise ValueError("child broke")


@app.orchestrator
def parent(ctx, xs):
    results = yield ctx.when_all([ctx.call_sub_orchestrator(child, x) for x in xs])
    try:
        yield ctx.call_sub_orchestrator(failing_child, None, instance_id=f"{ctx.instance_id}-bad")
    except tenuto.SubOrchestrationFailed as exc:
        return {"results": results, "child_error": exc.failure.type}
    return {"results": results}


@app.orchestrator
def counter(ctx, n):
    ctx.set_custom_status({"n": n})
    if n < 5:
        ctx.continue_as_new(n + 1)
        return None
    return n


@app.orchestrator
def eternal_listener(ctx, seen):
    item = yield ctx.wait_for_event("item")
    seen = [*seen, item]
    if len(seen) < 3:
        ctx.continue_as_new(seen)
        return None
    return seen


_held = threading.Event()
_go_on = threading.Event()


@app.orchestrator
def held_listener(ctx, seen):
    item = yield ctx.wait_for_event("item")
    if item == "hold" and not ctx.is_replaying:
        _held.set()
        _go_on.wait(30)  # the test raises more events while this step runs
    seen = [*seen, item]
    if len(seen) < 3:
        ctx.continue_as_new(seen, preserve_unprocessed_events=False)
        return None
    return seen


@app.orchestrator
def progress(ctx, n):
    for i in range(n):
        yield ctx.call_activity(double, i)
        ctx.set_custom_status({"done": i + 1, "of": n})
    yield ctx.wait_for_event("finish")
    return "done"


@app.orchestrator
def sender(ctx, target):
    ctx.send_event(target, "item", {"from": ctx.instance_id})
    ctx.send_event("nobody-has-this-id", "item", 1)  # dropped: no such instance
    yield ctx.create_timer(timedelta(seconds=0))
    return "sent"


@app.orchestrator
def sends_and_ends(ctx, target):
    """Sends in the step that ends the execution: no yield after the send."""
    ctx.send_event(target, "item", "last words")
    return "sent"


@app.orchestrator
def sends_and_renews(ctx, args):
    target, round = args
    ctx.send_event(target, "item", f"round {round}")
    if round < 2:
        ctx.continue_as_new([target, round + 1])
        return None
    return "sent"


@app.orchestrator
def replay_safe(ctx, _):
    first = (ctx.now().isoformat(), ctx.new_uuid(), ctx.new_uuid())
    yield ctx.call_activity(double, 1)
    yield ctx.call_activity(double, 2)
    second = (ctx.now().isoformat(), ctx.new_uuid())
    return [first, second, ctx.instance_id, ctx.is_replaying]


def test_retry_policy_retries_then_succeeds(client, start_worker):
    start_worker(app)
    key = "retry-ok"
    out = client.wait(client.start(retrying, {"key": key, "failures": 2, "max": 5}), timeout=10)
    assert out.output == "ok after 3"
    times = attempt_times[key]
    # first_delay 0.05 then 0.1: the gaps grow with the backoff.
    assert times[1] - times[0] >= 0.05
    assert times[2] - times[1] >= 0.1


def test_activity_failure_after_last_attempt_is_catchable(client, start_worker):
    start_worker(app)
    out = client.wait(
        client.start(retrying, {"key": "retry-fail", "failures": 10, "max": 3}), timeout=10
    )
    assert out.output == {"caught": "RuntimeError", "message": "attempt 3 failed", "attempts": 3}
    assert attempts["retry-fail"] == 3
    (failed,) = [e for e in client.history(out.instance_id) if e.type == "TaskFailed"]
    assert failed.data["attempts"] == 3
    assert "RuntimeError: attempt 3 failed" in failed.data["failure"]["traceback"]


def test_retry_delay_is_capped_by_max_delay():
    policy = RetryPolicy(max_attempts=10, first_delay=1, backoff=3, max_delay=5)
    assert [policy.delay(n) for n in range(1, 5)] == [1, 3, 5, 5]


def test_retry_policy_validates_its_values():
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="backoff"):
        RetryPolicy(backoff=0.5)
    with pytest.raises(ValueError, match="first_delay"):
        RetryPolicy(first_delay=-1)


def test_non_retryable_errors_fail_at_once():
    policy = RetryPolicy(max_attempts=5, non_retryable=("ValueError",))
    assert not policy.retries("builtins.ValueError", 1)
    assert not policy.retries("ValueError", 1)
    assert policy.retries("RuntimeError", 1)
    assert not policy.retries("RuntimeError", 5)


def test_durable_timer_fires_after_its_delay(client, start_worker):
    start_worker(app)
    out = client.wait(client.start(timer_flow, 0.3), timeout=10)
    assert out.output >= 0.3
    assert out.completed_at is not None
    assert (out.completed_at - out.created_at).total_seconds() >= 0.3


def test_timer_at_a_datetime(client, start_worker):
    start_worker(app)
    assert client.wait(client.start(timer_at_datetime, 0.1), timeout=10).output == "fired"


def test_external_event_is_delivered(client, start_worker):
    start_worker(app)
    iid = client.start(event_flow, 30)
    wait_for(lambda: client.status(iid).runtime_status is Status.RUNNING)
    client.raise_event(iid, "approval", {"by": "boss"})
    assert client.wait(iid, timeout=10).output == {"approved": {"by": "boss"}}


def test_external_event_timeout(client, start_worker):
    start_worker(app)
    assert client.wait(client.start(event_flow, 0.2), timeout=10).output == "timed out"


def test_events_raised_before_the_wait_are_kept_in_order(client, start_worker):
    iid = client.start(collect_events, 3)
    for i in range(3):
        client.raise_event(iid, "item", i)
    start_worker(app)
    assert client.wait(iid, timeout=10).output == [0, 1, 2]


def test_when_all_fans_out_and_in(client, start_worker):
    start_worker(app)
    assert client.wait(client.start(fan_out, 20), timeout=10).output == sum(
        2 * i for i in range(20)
    )


def test_when_all_of_nothing_is_an_empty_list(client, start_worker):
    start_worker(app)
    assert client.wait(client.start(fan_out, 0), timeout=10).output == 0


def test_when_any_returns_the_first_task(client, start_worker):
    start_worker(app)
    assert client.wait(client.start(race, None), timeout=10).output == "activity"


def test_sub_orchestrations_and_their_failures(client, start_worker):
    start_worker(app)
    iid = client.start(parent, [1, 2, 3], instance_id="fam")
    out = client.wait(iid, timeout=10)
    assert out.output == {"results": [2, 4, 6], "child_error": "ValueError"}
    kids = client.query(id_prefix="fam:").items
    assert sorted(k.instance_id for k in kids) == ["fam:0", "fam:1", "fam:2"]
    assert {k.parent_instance_id for k in kids} == {"fam"}
    assert client.status("fam-bad").runtime_status is Status.FAILED


def test_continue_as_new_restarts_with_fresh_history(client, start_worker):
    start_worker(app)
    out = client.wait(client.start(counter, 0), timeout=10)
    assert out.output == 5
    assert out.custom_status == {"n": 5}
    history = client.history(out.instance_id)
    started = [e for e in history if e.type == "ExecutionStarted"]
    assert len(started) == 1 and started[0].data["input"] == 5
    assert started[0].data["generation"] == 5


def test_continue_as_new_carries_unprocessed_events(client, start_worker):
    iid = client.start(eternal_listener, [])
    for item in ("a", "b", "c"):
        client.raise_event(iid, "item", item)
    start_worker(app)
    assert client.wait(iid, timeout=10).output == ["a", "b", "c"]


def test_events_raised_during_a_continue_as_new_step_reach_the_next_execution(client, start_worker):
    """Events the step never received are not its to drop: even without carrying over
    unprocessed events, they go to the new execution (they were deleted before)."""
    _held.clear()
    _go_on.clear()
    start_worker(app)
    iid = client.start(held_listener, [])
    client.raise_event(iid, "item", "hold")
    assert _held.wait(10)
    client.raise_event(iid, "item", "second")
    client.raise_event(iid, "item", "third")
    _go_on.set()
    assert client.wait(iid, timeout=10).output == ["hold", "second", "third"]


def test_custom_status_reports_progress(client, start_worker):
    start_worker(app)
    iid = client.start(progress, 3)
    wait_for(lambda: client.status(iid).custom_status == {"done": 3, "of": 3})
    client.raise_event(iid, "finish")
    assert client.wait(iid, timeout=10).output == "done"


def test_now_and_new_uuid_are_replay_safe(client, start_worker, db_url):
    # A worker with no cache replays the whole history at every step, so any value that
    # is not taken from history would change between steps.
    start_worker(app, cache_size=0)
    out = client.wait(client.start(replay_safe, None, instance_id="rs"), timeout=10)
    (first_time, u1, u2), (second_time, u3), iid, replaying = out.output
    assert len({u1, u2, u3}) == 3
    assert iid == "rs" and replaying is False
    started = [e.timestamp for e in client.history("rs") if e.type == "OrchestratorStarted"]
    assert first_time == started[0].isoformat()
    assert second_time == started[2].isoformat()


def test_an_event_sent_in_the_step_that_ends_the_execution_is_sent(client, start_worker):
    """An event sent just before the code returns, or continues as new, in the same
    step (before, it was dropped with the calls made after the end)."""
    start_worker(app)
    receiver = client.start(collect_events, 1)
    client.wait(client.start(sends_and_ends, receiver), timeout=10)
    assert client.wait(receiver, timeout=10).output == ["last words"]
    receiver = client.start(collect_events, 3)
    client.wait(client.start(sends_and_renews, [receiver, 0]), timeout=10)
    assert client.wait(receiver, timeout=10).output == ["round 0", "round 1", "round 2"]


def test_send_event_raises_an_event_on_another_instance(client, start_worker):
    start_worker(app, cache_size=0)  # the sender replays: EventSent must match its history
    receiver = client.start(collect_events, 1, instance_id="receiver")
    assert (
        client.wait(client.start(sender, receiver, instance_id="snd"), timeout=10).output == "sent"
    )
    assert client.wait(receiver, timeout=10).output == [{"from": "snd"}]
    sent = [e.data for e in client.history("snd") if e.type == "EventSent"]
    assert [(d["instance_id"], d["name"]) for d in sent] == [
        ("receiver", "item"),
        ("nobody-has-this-id", "item"),
    ]
    with pytest.raises(tenuto.InstanceNotFound):
        client.status("nobody-has-this-id")
